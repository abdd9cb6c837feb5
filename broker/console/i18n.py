"""The console's labels in English and French, and which language a request gets.

The language is the ``carebroker_lang`` cookie when set (the switch in the
page header sets it), else the best match of ``Accept-Language`` (RFC 9110
§12.5.4, with q-values), else English. Pages get the whole table as JSON so
the script draws dynamic parts in the same language.
"""

from __future__ import annotations

from typing import Literal, get_args

Language = Literal["en", "fr"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
LANG_COOKIE = "carebroker_lang"

LABELS: dict[Language, dict[str, str]] = {
    "en": {
        "language_name": "English",
        "skip": "Skip to content",
        "nav": "Main",
        "flows": "Flows",
        "messages": "Messages",
        "partners": "Partners",
        "alerts": "Alerts",
        "users": "Users",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "user_name": "User name",
        "password": "Password",
        "signed_in_as": "Signed in as",
        "sign_in_failed": "Wrong user name or password, or sign-in temporarily locked.",
        "session_ended": "Your session has ended. Sign in again.",
        "sso_sign_in": "Sign in with",
        "sso_failed": "Single sign-on did not succeed. Try again, or sign in with a password.",
        "or": "or",
        "role_viewer": "viewer",
        "role_operator": "operator",
        "role_admin": "admin",
        "loading": "Loading…",
        "updated_at": "Updated at",
        "update_failed": "Could not update; retrying.",
        "last_minutes": "last 5 min",
        "last_hour": "last hour",
        "received": "Received",
        "rejected": "Rejected",
        "delivered": "Delivered",
        "failed": "Failed",
        "queued": "Queued",
        "dead": "Dead letters",
        "oldest_pending": "Oldest waiting",
        "latency": "Latency p50 / p95",
        "state": "State",
        "partner": "Partner",
        "inbound": "Inbound (partners sending to carebroker)",
        "outbound": "Outbound (carebroker delivering to partners)",
        "per_minute": "per minute, last 60 minutes",
        "unknown_sender": "(unrecognised sender)",
        "state_idle": "idle",
        "state_ok": "OK",
        "state_backlog": "backlog",
        "state_failing": "failing",
        "none": "none",
        "endpoint": "Endpoint",
        "accepts": "Reads",
        "health": "Health",
        "last_received": "Last received",
        "last_delivered": "Last delivered",
        "last_error": "Last error",
        "certificate": "Certificate",
        "expires": "expires",
        "days_left": "days left",
        "traffic": "Traffic (last hour)",
        "only_sends": "sends only",
        "reload": "Reload configuration",
        "reload_confirm": "Reload the partner configuration now? Routing uses it at once.",
        "reloaded": "Configuration reloaded",
        "reload_unchanged": "Configuration reloaded (no change)",
        "reload_failed": "Configuration not reloaded; the current one stays in force:",
        "partners_count": "partners",
        "source": "Source",
        "confirm": "Confirm",
        "cancel": "Cancel",
        "coming_title": "Coming with the message API",
        "coming_messages": "Search by control id, carebroker id, partner, type, status, time "
        "and patient, each message's timeline, content and deliveries, replay and dead "
        "letters will appear here once the message API is merged.",
        "coming_alerts": "Alerts with their state and history, acknowledge and silence, will "
        "appear here once the alerts API is merged.",
        "admin_only": "This page needs the admin role.",
        "add_user": "Add a user",
        "role": "Role",
        "status": "Status",
        "active": "active",
        "disabled": "disabled",
        "created": "Created",
        "last_sign_in": "Last sign-in",
        "never": "never",
        "save": "Save",
        "disable": "Disable",
        "enable": "Enable",
        "add": "Add",
        "user_added": "User added",
        "user_saved": "User saved",
        "action_failed": "Not done:",
        "chart_label": "Messages per minute over the last 60 minutes",
        "seconds": "s",
        "minutes": "min",
        "hours": "h",
    },
    "fr": {
        "language_name": "Français",
        "skip": "Aller au contenu",
        "nav": "Principale",
        "flows": "Flux",
        "messages": "Messages",
        "partners": "Partenaires",
        "alerts": "Alertes",
        "users": "Utilisateurs",
        "sign_in": "Se connecter",
        "sign_out": "Se déconnecter",
        "user_name": "Nom d'utilisateur",
        "password": "Mot de passe",
        "signed_in_as": "Connecté en tant que",
        "sign_in_failed": "Nom d'utilisateur ou mot de passe incorrect, ou connexion "
        "temporairement bloquée.",
        "session_ended": "Votre session a expiré. Reconnectez-vous.",
        "sso_sign_in": "Se connecter avec",
        "sso_failed": "La connexion unique n'a pas abouti. Réessayez, ou connectez-vous avec "
        "un mot de passe.",
        "or": "ou",
        "role_viewer": "lecteur",
        "role_operator": "opérateur",
        "role_admin": "administrateur",
        "loading": "Chargement…",
        "updated_at": "Mis à jour à",
        "update_failed": "Mise à jour impossible ; nouvel essai en cours.",
        "last_minutes": "5 dernières min",
        "last_hour": "dernière heure",
        "received": "Reçus",
        "rejected": "Rejetés",
        "delivered": "Livrés",
        "failed": "En échec",
        "queued": "En attente",
        "dead": "Lettres mortes",
        "oldest_pending": "Plus ancien en attente",
        "latency": "Latence p50 / p95",
        "state": "État",
        "partner": "Partenaire",
        "inbound": "Entrants (partenaires qui envoient à carebroker)",
        "outbound": "Sortants (carebroker livre aux partenaires)",
        "per_minute": "par minute, 60 dernières minutes",
        "unknown_sender": "(émetteur non reconnu)",
        "state_idle": "inactif",
        "state_ok": "OK",
        "state_backlog": "retard",
        "state_failing": "en échec",
        "none": "aucun",
        "endpoint": "Point de livraison",
        "accepts": "Lit",
        "health": "Santé",
        "last_received": "Dernière réception",
        "last_delivered": "Dernière livraison",
        "last_error": "Dernière erreur",
        "certificate": "Certificat",
        "expires": "expire le",
        "days_left": "jours restants",
        "traffic": "Trafic (dernière heure)",
        "only_sends": "émetteur seulement",
        "reload": "Recharger la configuration",
        "reload_confirm": "Recharger la configuration des partenaires maintenant ? Le "
        "routage l'utilise aussitôt.",
        "reloaded": "Configuration rechargée",
        "reload_unchanged": "Configuration rechargée (inchangée)",
        "reload_failed": "Configuration non rechargée ; l'actuelle reste en vigueur :",
        "partners_count": "partenaires",
        "source": "Source",
        "confirm": "Confirmer",
        "cancel": "Annuler",
        "coming_title": "Disponible avec l'API des messages",
        "coming_messages": "La recherche par identifiant de contrôle, identifiant carebroker, "
        "partenaire, type, statut, période et patient, la chronologie, le contenu et les "
        "livraisons de chaque message, le rejeu et les lettres mortes apparaîtront ici "
        "une fois l'API des messages intégrée.",
        "coming_alerts": "Les alertes, leur état et leur historique, l'acquittement et la mise "
        "en sourdine apparaîtront ici une fois l'API des alertes intégrée.",
        "admin_only": "Cette page nécessite le rôle administrateur.",
        "add_user": "Ajouter un utilisateur",
        "role": "Rôle",
        "status": "Statut",
        "active": "actif",
        "disabled": "désactivé",
        "created": "Créé le",
        "last_sign_in": "Dernière connexion",
        "never": "jamais",
        "save": "Enregistrer",
        "disable": "Désactiver",
        "enable": "Réactiver",
        "add": "Ajouter",
        "user_added": "Utilisateur ajouté",
        "user_saved": "Utilisateur enregistré",
        "action_failed": "Non effectué :",
        "chart_label": "Messages par minute sur les 60 dernières minutes",
        "seconds": "s",
        "minutes": "min",
        "hours": "h",
    },
}


def choose_language(cookie: str | None, accept_language: str | None) -> Language:
    """Return the cookie's language if valid, else the best ``Accept-Language`` match."""
    if cookie in LANGUAGES:
        return cookie
    best: tuple[float, int, Language] | None = None
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if primary in LANGUAGES and quality > 0:
            candidate = (quality, -position, primary)
            if best is None or candidate > best:
                best = candidate
    return best[2] if best else "en"
