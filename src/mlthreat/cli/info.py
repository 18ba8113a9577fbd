"""`validate`, `schema` and `catalog`: what a spec is, and what mlthreat knows."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from mlthreat.catalog import Catalog, load_catalog
from mlthreat.cli.app import Cli
from mlthreat.errors import EXIT_OK
from mlthreat.vocabulary import Family

if TYPE_CHECKING:
    from rich.table import Table


def cmd_validate(cli: Cli) -> int:
    from mlthreat.pipeline import load_pipeline
    pipeline = load_pipeline(cli.args.spec, load_catalog())
    spec = pipeline.spec
    controls = set(pipeline.pipeline_controls).union(*pipeline.controls.values())
    sys.stdout.write(f"OK {cli.args.spec}: {len(spec.components)} components, "
                     f"{len(spec.flows)} flows, {len(controls)} distinct controls\n")
    for w in pipeline.warnings:
        cli.warn(str(w))
    return EXIT_OK


def cmd_schema(cli: Cli) -> int:
    from mlthreat.pipeline import PipelineSpec
    output = cli.output()
    text = json.dumps(PipelineSpec.model_json_schema(by_alias=True), indent=2) + "\n"
    if output is not None:
        cli.write_all({output: text})
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_catalog(cli: Cli) -> int:
    catalog = load_catalog()
    family = Family(cli.args.family) if cli.args.family else None
    if cli.args.format == "json":
        items = (catalog.controls if cli.args.controls else catalog.by_family(family))
        data = [i.model_dump(mode="json") for i in items
                if family is None or i.family == family]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif cli.args.controls:
        cli.out.print(_controls_table(catalog, family))
    else:
        cli.out.print(_threats_table(catalog, family))
    return EXIT_OK


def _threats_table(catalog: Catalog, family: Family | None) -> Table:
    from rich.table import Table
    table = Table(title=f"{len(catalog.by_family(family))} threats", title_justify="left")
    for col in ("id", "family", "goal · asset", "acts at", "ATLAS"):
        table.add_column(col)
    for t in catalog.by_family(family):
        table.add_row(f"{t.id}\n[dim]{t.name}[/]", t.family.value,
                      f"{t.goal.value} · {t.asset.value}",
                      ", ".join(k.value for k in t.acts_at.kinds),
                      ", ".join(t.references.atlas))
    return table


def _controls_table(catalog: Catalog, family: Family | None) -> Table:
    from rich.table import Table
    controls = [c for c in catalog.controls if family is None or c.family == family]
    table = Table(title=f"{len(controls)} controls (use the id or an alias in a spec)",
                  title_justify="left")
    for col in ("id", "family", "incidental", "aliases", "mitigates"):
        table.add_column(col)
    for c in controls:
        table.add_row(f"{c.id}\n[dim]{c.name}[/]", c.family.value, "yes" if c.incidental else "",
                      ", ".join(c.aliases), ", ".join(f"{t} ({s.value})"
                                                      for t, s in c.mitigates.items()))
    return table
