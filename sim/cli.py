"""The `escsim` command line: each command parses, calls one library function, prints.

Exit codes: 0 ok, 2 bad input or usage, 1 internal error (a bug, or a trial that raised).
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import signal
import threading
import traceback
from pathlib import Path

import click

from sim.errors import InputError, WorkError
from sim.scenario.schema import MAX_TRIALS


class Command(click.Group):
    """Turns the library's errors into messages and exit codes, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as e:
            click.echo(str(e), err=True)
            ctx.exit(2)
        except WorkError as e:
            if e.resumable and "resume_command" in ctx.meta:
                elsewhere = " (on a new cluster: with its address)" if "--scheduler" in ctx.meta["resume_command"] else ""
                click.echo(f"error: {e}. The job stopped; its completed chunks are kept. Fix the cause and resume "
                           f"it{elsewhere} with: {ctx.meta['resume_command']}", err=True)
            else:
                again = " with --resume to keep its completed chunks" if e.resumable and "resume" in ctx.meta else ""
                click.echo(f"error: {e}. The job stopped; fix the cause and run it again{again}.", err=True)
            ctx.exit(1)
        except KeyboardInterrupt as e:
            hint = f" Completed chunks are kept: resume with the same command and {ctx.meta['resume']}." \
                if "resume" in ctx.meta else ""
            click.echo(f"\n{'terminated' if isinstance(e, Terminated) else 'interrupted'}.{hint}", err=True)
            ctx.exit(143 if isinstance(e, Terminated) else 130)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as e:  # noqa: BLE001 - last resort: a bug, reported briefly
            if os.environ.get("ESCSIM_DEBUG"):
                traceback.print_exc()
            click.echo(f"internal error: {type(e).__name__}: {e} (set ESCSIM_DEBUG=1 for the traceback)", err=True)
            ctx.exit(1)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler or `kill` stopping the job): stopped like Ctrl-C, with the same cleanup."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def _scheduler(ctx, param, value: str | None) -> str | None:
    """A `--scheduler` address is checked for its form before anything is read or run."""
    if value is not None:
        from sim.runs.executors import scheduler_address

        scheduler_address(value)
    return value


SET_HELP = ("Set a scenario value after the file is read, as a child scenario would (repeatable): "
            "KEY.PATH=VALUE, the value read as TOML, e.g. actors.israel.rules.strike_in_iraq.threshold=60.")


def set_option(help_text: str = SET_HELP):
    return click.option("--set", "settings", multiple=True, metavar="KEY.PATH=VALUE", help=help_text)


@click.group(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="escalation-sim")
def main() -> None:
    """escalation-sim: how likely is the Iraqi militias' fire to escalate?"""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


@main.command()
@click.argument("scenario", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@set_option(SET_HELP + " For a sweep spec: of its base scenario.")
def validate(scenario: Path, settings) -> None:
    """Check FILE without running anything. A scenario is printed resolved (after extends), as TOML;
    a sweep spec or a calibration targets file (told apart by its [sweep] or [fit] table) is checked
    whole, with the scenario it names, and summed up in one line."""
    # Only what checking needs: not the run writers and reports (matplotlib, Arrow's writers), whose
    # native threads would outlive a command that is over in a second.
    from sim.inputs import input_kind, sweep_line, targets_line
    from sim.scenario import load_scenario
    from sim.scenario.loading import resolved_toml

    kind = input_kind(scenario)
    if kind == "sweep spec":
        click.echo(sweep_line(scenario, settings))
        return
    if kind != "scenario":
        if settings:
            raise InputError(f"error: --set: expected a scenario or a sweep spec to set values in, found {kind} {scenario}")
        click.echo(targets_line(scenario))
        return
    from sim.forecast import resolve_forecast

    resolved = load_scenario(scenario, overrides=settings)
    conditioned = resolve_forecast(resolved, str(scenario))  # a forecast's history and targets are checked too
    click.echo(resolved_toml(resolved), nl=False)
    line = f"{scenario}: valid scenario '{resolved.scenario.name}'"
    if conditioned.forecast is not None:
        history = conditioned.forecast.resolved
        line += (f", a forecast from {resolved.scenario.start_date} whose histories must agree with "
                 f"{len(history.counts)} counts and {len(history.events)} events observed before it")
    click.echo(line, err=True)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trials", type=click.IntRange(1, MAX_TRIALS), help="Number of trials (default: the scenario's).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Master seed (default: the scenario's).")
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes (default: all cores).")
@click.option("--scheduler", metavar="ADDRESS", callback=_scheduler,
              help="Run on a Dask cluster (tcp://HOST:PORT) instead of local processes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: runs/<scenario>-<time>).")
@click.option("--resume", is_flag=True, help="Complete an interrupted run in --out.")
@set_option()
@click.pass_context
def run(ctx, scenario: Path, trials, seed, workers, scheduler, out, resume, settings) -> None:
    """Run SCENARIO's Monte Carlo trials; print a summary and write the run folder."""
    from sim.forecast import resolve_forecast
    from sim.runs.runner import run as run_scenario
    from sim.runs.table import summary_text
    from sim.scenario import load_scenario

    resolved = resolve_forecast(load_scenario(scenario, overrides=settings), str(scenario))
    if out is None:
        if resume:
            raise InputError("error: --resume: expected --out naming the folder of the run to complete, found none")
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{resolved.scenario.name}-{stamp}"
    ctx.meta["resume"] = f"--resume --out {out}"
    command = ["escsim", "run", str(scenario), *_options(trials=trials, seed=seed, workers=workers,
                                                          scheduler=scheduler, out=out), *_settings(settings)]
    ctx.meta["resume_command"] = _resume_command(command)
    result = run_scenario(resolved, trials=trials, seed=seed, workers=workers, scheduler=scheduler, out=out,
                          resume=resume, command=command + (["--resume"] if resume else []), overrides=settings)
    click.echo(summary_text(result, tracked=[m for m in resolved.milestones if m not in resolved.ladder],
                            origin=resolved.scenario.start_date if resolved.forecast is not None else None))


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--samples", type=click.IntRange(1, 10**6),
              help="Design size (default: the spec's): values per parameter (oat, grid), points (lhs), "
                   "N (sobol, a power of two), trajectories (morris).")
@click.option("--trials-per-point", type=click.IntRange(1, MAX_TRIALS), help="Trials at each design point (default: the spec's).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Master seed (default: the spec's).")
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes (default: all cores).")
@click.option("--scheduler", metavar="ADDRESS", callback=_scheduler,
              help="Run on a Dask cluster (tcp://HOST:PORT) instead of local processes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: runs/sweep-<name>-<time>).")
@click.option("--resume", is_flag=True, help="Complete an interrupted sweep in --out.")
@set_option(SET_HELP + " Sets the base scenario's values (a swept key is still swept).")
@click.pass_context
def sweep(ctx, spec: Path, samples, trials_per_point, seed, workers, scheduler, out, resume, settings) -> None:
    """Run the sensitivity design of sweep SPEC; write points, indices and a report."""
    from sim.sweeps.runner import sweep as run_sweep
    from sim.sweeps.spec import load_sweep
    from sim.sweeps.summary import sweep_text

    loaded = load_sweep(spec, overrides=settings)
    if out is None:
        if resume:
            raise InputError("error: --resume: expected --out naming the folder of the sweep to complete, found none")
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"sweep-{loaded.name}-{stamp}"
    ctx.meta["resume"] = f"--resume --out {out}"
    command = ["escsim", "sweep", str(spec), *_options(samples=samples, trials_per_point=trials_per_point, seed=seed,
                                                       workers=workers, scheduler=scheduler, out=out), *_settings(settings)]
    ctx.meta["resume_command"] = _resume_command(command)
    result = run_sweep(loaded, samples=samples, trials_per_point=trials_per_point, seed=seed, workers=workers,
                       scheduler=scheduler, out=out, resume=resume, command=command + (["--resume"] if resume else []),
                       overrides=settings)
    click.echo(sweep_text(result))


@main.command()
@click.argument("items", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--trials", type=click.IntRange(1, MAX_TRIALS), help="Trials of each scenario (default: the first's).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Master seed shared by all (default: the first's).")
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes (default: all cores).")
@click.option("--scheduler", metavar="ADDRESS", callback=_scheduler,
              help="Run on a Dask cluster (tcp://HOST:PORT) instead of local processes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: runs/compare-<time>).")
@click.option("--pairs", type=click.Choice(["all", "first"]), default="all", show_default=True,
              help="Which pairs to compare: all (A–B, A–C, B–C) or each against the first (A–B, A–C).")
@click.option("--resume", is_flag=True, help="Complete an interrupted comparison in --out (its runs resume).")
@set_option("Set a value in the scenarios after they are read (repeatable): [N:]KEY.PATH=VALUE, the value read "
            "as TOML; with N: only in the N-th scenario (1 = the first), else in every scenario file.")
@click.pass_context
def compare(ctx, items, trials, seed, workers, scheduler, out, pairs, resume, settings) -> None:
    """Compare scenarios (files, or finished run folders of the same seed and trial count) trial by trial."""
    from sim.comparison.runner import compare as run_compare
    from sim.comparison.summary import compare_text

    if out is None:
        if resume:
            raise InputError("error: --resume: expected --out naming the folder of the comparison to complete, "
                             "found none")
        out = Path("runs") / f"compare-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    ctx.meta["resume"] = f"--resume --out {out}"
    command = ["escsim", "compare", *map(str, items), *_options(trials=trials, seed=seed, workers=workers,
                                                                 scheduler=scheduler, out=out), *(["--pairs", pairs] if pairs != "all" else []),
               *_settings(settings)]
    ctx.meta["resume_command"] = _resume_command(command)
    click.echo(compare_text(run_compare(list(items), trials=trials, seed=seed, workers=workers, scheduler=scheduler,
                                        out=out, resume=resume, command=command + (["--resume"] if resume else []),
                                        overrides=settings, pairs=pairs)))


@main.command()
@click.argument("source", metavar="RUN_DIR|SCENARIO", type=click.Path(path_type=Path))
@click.option("--trial", type=click.IntRange(0, 2**63 - 1), help="The trial to trace (0 is the first).")
@click.option("--where", metavar="MILESTONE", help="Trace the first trial that reached MILESTONE.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Master seed, with a scenario (default: the scenario's).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Trace folder (default: runs/trace-<scenario>-trial<N>).")
@set_option()
def trace(source: Path, trial, where, seed, out, settings) -> None:
    """Re-simulate one trial of a run folder or a scenario exactly, with every event and its cause:
    events.csv, events.parquet, levels.csv and trace.html."""
    from sim.runs.trace import trace_result as run_trace
    from sim.runs.trace import trace_text, write_trace

    if not source.exists():
        raise InputError(f"error: {source}: expected a run folder or a scenario file, found no such path")
    result = run_trace(source, trial, where=where, seed=seed, overrides=settings)
    if out is None:
        out = Path("runs") / f"trace-{result.scenario.scenario.name}-trial{result.traced.trial}"
    click.echo(trace_text(write_trace(result, out)))


@main.command()
@click.argument("targets", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--budget", type=click.Choice(["small", "full"]), default="small", show_default=True,
              help="small: a quick rough fit (minutes); full: the real fit.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=20240604, show_default=True, help="Master seed.")
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes (default: all cores).")
@click.option("--scheduler", metavar="ADDRESS", callback=_scheduler,
              help="Run on a Dask cluster (tcp://HOST:PORT) instead of local processes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Fit folder (default: fits/<name> beside the targets file).")
@click.option("--replace", is_flag=True, help="Start a new fit over the fit (finished or not) in the fit folder.")
@click.option("--resume", is_flag=True, help="Complete an interrupted fit in the fit folder.")
@click.pass_context
def calibrate(ctx, targets: Path, budget, seed, workers, scheduler, out, replace, resume) -> None:
    """Fit TARGETS' scenario to its reported counts and events by ABC-SMC; write the fit folder."""
    from sim.calibration.fit import calibrate as run_fit
    from sim.calibration.summary import fit_text

    ctx.meta["resume"] = "--resume" if out is None else f"--resume --out {out}"
    command = ["escsim", "calibrate", str(targets), "--budget", budget, "--seed", str(seed),
               *_options(workers=workers, scheduler=scheduler, out=out)]
    ctx.meta["resume_command"] = _resume_command(command)
    click.echo(fit_text(run_fit(targets, budget=budget, seed=seed, workers=workers, scheduler=scheduler, out=out,
                                replace=replace, resume=resume,
                                command=command + (["--resume"] if resume else []))))


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=False, path_type=Path))
def report(folder: Path) -> None:
    """Rebuild FOLDER's report (a run's, sweep's, comparison's or calibration fit's) from its saved files, without
    re-running: report.html, report.md and the tables as CSV."""
    from sim.reports.compare import rebuild_compare_report
    from sim.reports.fit import rebuild_fit_report
    from sim.reports.run import rebuild_run_report
    from sim.reports.sweep import rebuild_sweep_report
    from sim.runs.manifest import read_json

    def rebuild_compare(folder: Path) -> list[Path]:
        rebuild_compare_report(folder)
        return [folder / name for name in ("report.html", "report.md", "milestones.csv", "ladder.csv", "parameters.csv")]

    if (folder / "manifest.json").is_file():
        kind = read_json(folder / "manifest.json").get("kind", "run")
        rebuilders = {"run": rebuild_run_report, "sweep": rebuild_sweep_report, "compare": rebuild_compare}
        if kind not in rebuilders:
            raise InputError(f"error: {folder / 'manifest.json'}: kind: expected one of {', '.join(rebuilders)}, "
                             f"found {kind!r}")
        written = rebuilders[kind](folder)
    elif (folder / "fit.toml").is_file() and (folder / "posterior.parquet").is_file():
        written = rebuild_fit_report(folder)
    else:
        raise InputError(f"error: {folder}: expected a finished run, sweep or comparison folder (with manifest.json) "
                         "or a calibration fit folder (with fit.toml and posterior.parquet), found neither")
    click.echo(f"wrote {folder}/ ({', '.join(p.name for p in written)})")


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("docs/schemas"), show_default=True,
              help="Folder for the JSON Schemas (scenario, sweep and targets .schema.json).")
@click.option("--reference", type=click.Path(dir_okay=False, path_type=Path), default=Path("docs/scenario-reference.md"),
              show_default=True, help="File for the Markdown reference of every key.")
def schema(out: Path, reference: Path) -> None:
    """Write the JSON Schemas of scenario, sweep and targets files (for an editor's TOML support) and the
    reference of every key, generated from the schema."""
    from sim.reference import write

    click.echo("wrote " + ", ".join(str(p) for p in write(out, reference)))


def _resume_command(command: list[str]) -> str:
    """The command that completes this job from its checkpoints, as one line to copy."""
    return shlex.join(command + ["--resume"])


def _settings(settings) -> list[str]:
    """`--set` words as command-line words."""
    return [word for setting in settings for word in ("--set", setting)]


def _options(**options) -> list[str]:
    """The given options as command-line words, to record the command that was run."""
    words: list[str] = []
    for key, value in options.items():
        if value is not None:
            words += [f"--{key.replace('_', '-')}", str(value)]
    return words
