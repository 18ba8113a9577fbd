"""THE driver of an assessment, for every front end (command line, notebook, board, cluster):
scan the artifacts → place and trace the threats → probe the models → attribute the evidence →
score every finding once → compare perceptions. Progress goes to an Observer it is given; it
knows no terminal, never prints and never exits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlthreat.analysis.assess import place, score, shown_by_scans
from mlthreat.analysis.attribution import number
from mlthreat.catalog import Catalog, load_catalog
from mlthreat.errors import Interrupted, interrupts_as
from mlthreat.imports import load as load_evidence
from mlthreat.perception.gaps import with_perceptions
from mlthreat.pipeline import Pipeline, load_pipeline
from mlthreat.progress import Observer, Silent, Steps
from mlthreat.results import Assessment, Evidence, Skipped


class Assessor:
    """`Assessor(probes=True, budget="quick").assess("pipeline.yaml")` → Assessment.

    scan the spec's artifacts; run the probe blocks' attacks (`only` kinds, on `components`, with
    `budget`, in `jobs` processes; `trust` loads what the scanner cannot see into) here or on a
    Dask `scheduler` / local[:N] (docs/cluster.md); `evidence`: other tools' reports as
    FILE[@COMPONENT] (garak, `mlthreat.imports`). Ctrl-C in probes raises Interrupted."""

    def __init__(self, catalog: Catalog | None = None, *, scan: bool = True,
                 probes: bool = False, only: Sequence[str] = (), components: Sequence[str] = (),
                 budget: str = "standard", jobs: int = 1, trust: bool = False,
                 scheduler: str | None = None, observer: Observer | None = None,
                 evidence: Sequence[str] = ()) -> None:
        self.catalog, self.scan, self.probes, self.only = catalog, scan, probes, tuple(only)
        self.components, self.budget, self.jobs = tuple(components), budget, jobs
        self.trust, self.observer, self.scheduler, self.evidence = (
            trust, observer or Silent(), scheduler, tuple(evidence))

    def assess(self, spec: Pipeline | str | Path, perceptions: Sequence[str | Path] = ()
               ) -> Assessment:
        steps = Steps(self.observer)
        # Ctrl-C between the probes' own bookkeeping: say where
        with interrupts_as(lambda: f"interrupted while {steps.current}; finished: "
                           f"{', '.join(steps.done) or 'nothing'}. Nothing was written."):
            return self._assess(spec, perceptions, steps)

    def _assess(self, spec: Pipeline | str | Path, perceptions: Sequence[str | Path],
                steps: Steps) -> Assessment:
        catalog = self.catalog or load_catalog()
        pipeline = spec if isinstance(spec, Pipeline) else load_pipeline(spec, catalog)
        imported, notes = load_evidence(pipeline, self.evidence) if self.evidence else ([], [])
        steps.stage("scan")
        found, scan_notes = self._scan(pipeline)
        steps.stage("place")
        placed = place(pipeline, catalog, shown_by_scans(found))
        measured, skipped = self.measure(pipeline, steps) if self.probes else ([], [])
        steps.stage("score")
        notes += scan_notes + [f"{s.component}: {s.source.removeprefix('probe:')} probe "
                               f"skipped: {s.reason}" for s in skipped]
        notes += [f"{e.component}: {e.title} probe: {w}" for e in measured
                  for w in e.extra.get("warnings", ())]
        assessment = score(placed, number(found + imported + measured), tuple(notes), skipped)
        if perceptions:
            steps.stage("perception")
            assessment = with_perceptions(assessment, pipeline, catalog, perceptions)
        return assessment

    def _scan(self, pipeline: Pipeline) -> tuple[list[Evidence], list[str]]:
        if not self.scan:
            return [], []
        from mlthreat.scanners.evidence import scan_evidence
        return scan_evidence(pipeline)

    def measure(self, pipeline: Pipeline, observer: Observer | None = None
                ) -> tuple[list[Evidence], list[Skipped]]:
        """The probes alone: what each measured (ids not yet numbered), and what was skipped."""
        observer = observer or self.observer
        from mlthreat.probes.runner import PROBES, kind_of, plan, run_probes
        only = self.only or PROBES
        observer.stage("probe", sum(len(k) for _, k in plan(pipeline, only, self.components)))
        if self.scheduler:
            from mlthreat.cluster import connect
            with connect(self.scheduler) as client:
                runs = run_probes(pipeline, only, self.budget, self.jobs, self.trust,
                                  observer=observer, components=self.components, cluster=client)
        else:
            runs = run_probes(pipeline, only, self.budget, self.jobs, self.trust,
                              observer=observer, components=self.components)
        cut = [f"{k} on {r.component}" for r in runs for k in r.interrupted]
        if cut:
            done = [f"{kind_of(e)} on {r.component}" for r in runs for e in r.results]
            raise Interrupted(f"interrupted: finished {', '.join(done) or 'nothing'}; not run: "
                              f"{', '.join(cut)}. Nothing was written.")
        return ([e for r in runs for e in r.results],
                [Skipped(f"probe:{k}", r.component, why) for r in runs for k, why in r.skipped])
