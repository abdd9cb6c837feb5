"""Business acknowledgements to the document's creator: ``ZAM^Z02`` and ``ZAM^Z03`` (pure).

``profils-messages.md`` ("Description des messages HL7 d'accusés métier"),
``ack-metier-zam.md`` (table AckMetierZAM), ``error-codes.md`` (SMTPERRORCODE,
applicationErrorCondition) and the ANS examples (hl7V2-exemples, v2.1: MSH,
EVN, then the OBX): HL7 v2.6, ``MSH-21 = 2.1^CISIS_CDA_HL7_V2``.

- ``ZAM^Z02^ZAM_Z01``, reception by the recipient's mail server (from a DSN,
  or from the SMTP server's refusal at submission): OBX 1
  ``ACK_RECEPTION_MSS`` = Y/N with OBX-4 the original MSH-10; OBX 2
  ``DESTINATAIRE_MSS`` (XTN ``^^X.400^address``) with OBX-4 the recipient's
  id; on N an ERR: ERR-3 ``207``, ERR-4 ``E``, ERR-5
  ``<code>^<label>^SMTPERRORCODE``.
- ``ZAM^Z03^ZAM_Z01``, read (from an MDN): OBX 1 ``ACK_LECTURE_MSS``, OBX 2
  ``LECTEUR_MSS`` (the mailbox that read it); on N ERR-5
  ``<code>^<label>^applicationErrorCondition`` (900-906, the MDN's error).

The ZAM goes back the way the original came: MSH-3/4 are the original MSH-5/6
(the platform as the creator addressed it), MSH-5/6 the original MSH-3/4,
MSH-11 and MSH-18 copied. Values are escaped in the ZAM's delimiters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from adapters.hl7v2.ack import Header
from adapters.hl7v2.er7 import DEFAULT_ENCODING, escape

Event = Literal["Z02", "Z03"]
PROFILE = "2.1^CISIS_CDA_HL7_V2"
# error-codes.md, table SMTPERRORCODE.
SMTP_ERROR_CODES = {
    "101": "Le serveur n'arrive pas à se connecter.",
    "111": "Connexion refusée ou impossibilité d'ouvrir un flux SMTP.",
    "251": "Le compte du destinataire n'est pas sur le serveur actuel.",
    "252": "Le serveur ne peut pas vérifier l'utilisateur.",
    "420": "Problème de connexion de temporisation.",
    "421": "Le service est indisponible en raison d'un problème de connexion.",
    "422": "La boîte aux lettres du destinataire a dépassé sa limite de stockage.",
    "431": "Espace insuffisant sur le disque, ou état de mémoire insuffisante.",
    "432": "Mot de passe de transition nécessaire",
    "441": "Le serveur du destinataire ne répond pas",
    "442": "La connexion a été interrompue pendant la transmission",
    "450": "Action non effectuée : boîte-aux-lettres non disponible",
    "451": "Action arrêtée : erreur de traitement",
    "452": "Action non effectuée : manque de ressources système.",
    "500": "Erreur de syntaxe, commande non reconnue",
    "501": "Erreur de syntaxe dans des paramètres ou arguments de commande",
    "502": "Commande non implémentée",
    "503": "Mauvaise séquence de commandes",
    "504": "Paramètre de commande non implémenté",
    "510": "Mauvaise adresse courriel",
    "512": "Erreur DNS : le serveur hôte du nom de domaine du destinataire est introuvable.",
    "513": "Le type d'adresse est incorrect.",
    "523": "La taille totale du message dépasse les limites du serveur destinataire.",
    "530": "L'authentification est requise.",
    "541": "L'adresse du destinataire a rejeté le message.",
    "550": "Action non effectuée : boîte aux lettres non disponible",
    "551": "Un relais peut être interrompu (adresses non hébergées localement).",
    "552": "Action abandonnée - Allocation de stockage dépassée.",
    "553": "La commande a été abandonnée car le nom de la boîte aux lettres n'est pas valide.",
    "554": "L'envoi a échoué (erreur permanente).",
}
# error-codes.md, applicationErrorCondition (the consumer's integration errors).
APPLICATION_ERROR_CODES = {
    "900": "Version du document incorrecte lors d'une demande de remplacement/suppression",
    "901": "Auteur non autorisé à remplacer ou supprimer un document",
    "902": "Identifiant patient inconnu",
    "903": "INS non présent dans le document",
    "904": "L'INS transmis ne correspond pas exactement à celui stocké dans la base du "
    "consommateur",
    "905": "L'INS transmis n'est pas complet",
    "906": "Erreur 'Autre'",
}
_OBX = {
    "Z02": (
        "ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM",
        "DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM",
        "SMTPERRORCODE",
    ),
    "Z03": (
        "ACK_LECTURE_MSS^Accusé de lecture^AckMetierZAM",
        "LECTEUR_MSS^Lecteur du courriel MSSanté^AckMetierZAM",
        "applicationErrorCondition",
    ),
}


@dataclass(frozen=True)
class Zam:
    """One business acknowledgement to build."""

    event: Event
    success: bool
    address: str  # the recipient mailbox (Z02) or the mailbox that read it (Z03)
    recipient_id: str = ""  # OBX-4 of the second OBX: the recipient's id when known
    code: str = ""  # ERR-5 code when not a success
    label: str = ""


def error_label(event: Event, code: str, given: str = "") -> str:
    """Return the label of an ERR-5 code: the guide's table, else what the notice said."""
    table = SMTP_ERROR_CODES if event == "Z02" else APPLICATION_ERROR_CODES
    return table.get(code) or given or "Erreur"


def build_zam(zam: Zam, original: Header, *, control_id: str, now: datetime) -> str:
    """Return the ZAM text (segments ending with CR) answering the message ``original``."""
    enc = DEFAULT_ENCODING
    stamp = now.strftime("%Y%m%d%H%M%S")
    status_obx, party_obx, table = _OBX[zam.event]
    msh = "|".join(
        [
            "MSH",
            enc.msh2,
            _as_written(original.receiving_application, original),
            _as_written(original.receiving_facility, original),
            _as_written(original.sending_application, original),
            _as_written(original.sending_facility, original),
            stamp,
            "",
            f"ZAM^{zam.event}^ZAM_Z01",
            escape(control_id, enc),
            _as_written(original.processing_id, original) or "P",
            "2.6",
            "",
            "",
            "",
            "",
            "FRA",
            _as_written(original.charset, original) or "UNICODE UTF-8",
            "",
            "",
            PROFILE,
        ]
    )
    segments = [
        msh,
        f"EVN||{stamp}",
        f"OBX|1|CWE|{status_obx}|{_as_written(original.control_id, original)}|"
        f"{'Y' if zam.success else 'N'}^^expandedYes-NoIndicator||||||F",
        f"OBX|2|XTN|{party_obx}|{escape(zam.recipient_id, enc)}|^^X.400^{escape(zam.address, enc)}"
        "||||||F",
    ]
    if not zam.success:
        code = zam.code or ("554" if zam.event == "Z02" else "906")
        label = error_label(zam.event, code, zam.label)
        segments.append(
            f"ERR|||207^Application error^messageErrorCondition|E|"
            f"{escape(code, enc)}^{escape(label, enc)}^{table}"
        )
    return "\r".join(segments) + "\r"


def _as_written(value: str, original: Header) -> str:
    """Return a copied header value in the standard delimiters (the ZAM's), escaped anew."""
    if original.enc == DEFAULT_ENCODING:
        return value
    # Another delimiter set: keep the first component, escaped in the standard delimiters.
    return escape(value.split(original.enc.component)[0], DEFAULT_ENCODING)
