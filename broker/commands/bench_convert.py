"""``carebroker bench convert``: translation throughput on one core, against a same-run baseline.

For each message type found in the corpus, over the same messages:

- ``sampled``: read the ER7 (lazy reader), translate, and validate the Bundle
  with fhir.resources (R4B) for the ``--sample`` share of messages: what the
  router does per message (``translation.validate_sample`` in the directory,
  adapters/translate/sampling.py);
- ``validate only``: the baseline, fhir.resources validation alone of the very
  Bundles the translation produced (same run, same process, same core);
- ``v2->FHIR``: the translation's own cost, no validation;
- ``+valid``: translation with validation of every Bundle, what
  ``carebroker convert --to fhir`` does;
- ``FHIR->v2``: FHIR back to ER7 (ORU^R01, REF^I12, OML^O21 only).

The process is pinned to one CPU so the figures are per core. Each figure is
messages per second over ``--seconds`` of repeated passes; the ratio column
is the sampled translation against the validation baseline.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from adapters.hl7v2 import charset as charsets
from adapters.hl7v2.er7 import Message
from adapters.translate import fhir_to_v2
from adapters.translate.bundle import validate_bundle
from adapters.translate.sampling import should_validate
from adapters.translate.v2_to_fhir import SUPPORTED, convert
from broker.directory import TranslationPolicy
from broker.errors import BrokerError, ConfigError


def register(commands: Any) -> None:
    """Add ``bench convert`` to the ``bench`` group."""
    bench = commands.add_parser(
        "convert",
        help="measure v2<->FHIR translation per second on one core, with a baseline",
    )
    bench.add_argument(
        "--corpus",
        type=Path,
        default=Path("tests/corpus"),
        help="folder of HL7 v2 samples (*.hl7, searched recursively); default tests/corpus",
    )
    bench.add_argument("--seconds", type=float, default=2.0, help="time per figure (default 2 s)")
    bench.add_argument(
        "--sample",
        type=float,
        default=TranslationPolicy().validate_sample,
        help="share of translations validated in the `sampled` figure "
        "(default: the directory's default, %(default)s)",
    )
    bench.add_argument(
        "--type",
        dest="types",
        action="append",
        metavar="TYPE",
        help="only this message type (ORU^R01 ...); repeat for several",
    )
    bench.set_defaults(handler=_bench)


def load_corpus(folder: Path) -> dict[str, list[Message]]:
    """Return the translatable HL7 v2 messages under ``folder``, by message type."""
    if not folder.is_dir():
        raise ConfigError(f"corpus folder {folder} does not exist (use --corpus DIR)")
    found: dict[str, list[Message]] = defaultdict(list)
    for path in sorted(folder.rglob("*.hl7")):
        data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
        try:
            message = Message(charsets.decode(data)[0])
            convert(message)
        except BrokerError:
            continue  # malformed samples are for other tests
        if message.message_type in SUPPORTED:
            found[message.message_type].append(message)
    return dict(found)


def rates(works: dict[str, Callable[[], int]], seconds: float, rounds: int = 6) -> dict[str, float]:
    """Return items per second of each ``work`` (a pass returning its item count).

    The works take turns in short slices, ``rounds`` times, so a change of load
    on a shared machine weighs on each figure alike and their ratio holds.
    """
    done = dict.fromkeys(works, 0)
    spent = dict.fromkeys(works, 0.0)
    for work in works.values():
        work()  # warm up caches and imports
    for _ in range(rounds):
        for name, work in works.items():
            start = time.perf_counter()
            while True:
                done[name] += work()
                elapsed = time.perf_counter() - start
                if elapsed >= seconds / rounds:
                    break
            spent[name] += elapsed
    return {name: done[name] / spent[name] for name in works}


def _pin_to_one_core() -> str:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity here)"
    return f"pinned to CPU {cpu}"


def _bench(args: argparse.Namespace) -> int:
    corpus = load_corpus(args.corpus)
    wanted = set(args.types or corpus)
    pinned = _pin_to_one_core()
    out = sys.stdout
    out.write(f"carebroker bench convert: {args.corpus}, {args.seconds:g} s per figure, {pinned}\n")
    out.write(
        f"{'type':<9} {'msgs':>4} {'resources':>9}  {'sampled':>9}  "
        f"{'validate only':>13}  {'ratio':>5}  {'v2->FHIR':>9}  {'+valid':>7}  {'FHIR->v2':>9}\n"
    )
    for kind in sorted(k for k in corpus if k in wanted):
        messages = corpus[kind]
        bundles = [convert(m).bundle for m in messages]
        resources = sum(len(b["entry"]) for b in bundles) / len(bundles)

        def translate_and_validate(batch: list[Message] = messages) -> int:
            for message in batch:
                convert(message, validate=True)
            return len(batch)

        draws = itertools.count()

        def translate_sampled(
            batch: list[Message] = messages,
            share: float = args.sample,
            draws: Iterator[int] = draws,
            kind: str = kind,
        ) -> int:
            # Each pass draws fresh ids, as new messages would: the cost is the sample's.
            for message in batch:
                bundle = convert(message, validate=False).bundle
                if should_validate(f"{kind}/{next(draws)}", share):
                    validate_bundle(bundle)
            return len(batch)

        def translate_only(batch: list[Message] = messages) -> int:
            for message in batch:
                convert(message, validate=False)
            return len(batch)

        def validate_only(batch: list[dict[str, Any]] = bundles) -> int:
            for bundle in batch:
                validate_bundle(bundle)
            return len(batch)

        def back_to_v2(batch: list[dict[str, Any]] = bundles) -> int:
            for bundle in batch:
                fhir_to_v2.convert(bundle)
            return len(batch)

        works: dict[str, Callable[[], int]] = {
            "sampled": translate_sampled,
            "baseline": validate_only,
            "bare": translate_only,
            "full": translate_and_validate,
        }
        if kind in ("ORU^R01", "REF^I12", "OML^O21"):
            works["back"] = back_to_v2
        measured = rates(works, args.seconds * len(works))
        sampled, baseline = measured["sampled"], measured["baseline"]
        bare, full = measured["bare"], measured["full"]
        back = f"{measured['back']:>9,.0f}" if "back" in measured else f"{'-':>9}"
        out.write(
            f"{kind:<9} {len(messages):>4} {resources:>9.1f}  {sampled:>9,.0f}  "
            f"{baseline:>13,.0f}  {sampled / baseline:>5.2f}  {bare:>9,.0f}  {full:>7,.0f}  "
            f"{back}\n"
        )
        out.flush()
    out.write(
        f"figures: messages per second on one core; sampled: {args.sample:g} of the "
        "translations validated\n"
    )
    return 0
