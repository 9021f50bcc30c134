"""``carbonlabel track recover``: the label of a tracked run that stopped before its end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bench_runner.cli import CliError, _private_key

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def recover(
    journal: Annotated[Path, typer.Argument(help="the run's journal (<run id>.journal.jsonl)")],
    key: Annotated[Path, typer.Option(help="Ed25519 private key (PEM) to sign with")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="where to write the label and envelope")
    ] = Path("."),
    submit: Annotated[
        bool, typer.Option("--submit", help="send it to the registry the run named")
    ] = False,
    token: Annotated[
        str | None, typer.Option(envvar="CARBONLABEL_TOKEN", help="the vendor's API token")
    ] = None,
) -> None:
    """Sign the label of a tracked run from its journal: marked incomplete when the run stopped
    before its end (a crash or a kill), with every segment flushed before it stopped."""
    from bench_runner.tracking import journal as journal_mod
    from bench_runner.tracking.track import TrackError, label_from, submit_envelope, write_signed

    private_key = _private_key(key)
    try:
        recovered = journal_mod.read(journal)
        label = label_from(recovered)
        _, envelope_path = write_signed(label, private_key, out_dir)
    except (journal_mod.JournalError, TrackError) as exc:
        raise CliError(str(exc)) from None
    status = label["run"]["status"]
    results = label["results"]
    console.print(
        f"{status} run: {results['steps_measured']:,} steps, "
        f"{results['total_energy_wh']:.4g} Wh measured over {len(recovered.segments)} segments",
        markup=False,
    )
    out.print(str(envelope_path))
    if submit:
        try:
            base = submit_envelope(label["registry"], token, envelope_path)
        except TrackError as exc:
            raise CliError(str(exc)) from None
        console.print(f"stored: {base}/v1/labels/{label['label_id']}", markup=False)
