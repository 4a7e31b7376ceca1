"""Just enough of Dash's browser renderer to replay a page's callback traffic faithfully.

The requests are built from what the server itself publishes: `/_dash-dependencies` (every
callback, its outputs, inputs, state, whether it runs in the browser and whether it skips
the initial call) and the component trees of `/_dash-layout` and of the pages router's
answer. The rules followed are the renderer's:

- a new piece of layout triggers every server callback with an input or output in it whose
  inputs all exist and that does not set `prevent_initial_call`;
- a callback whose input is the output of another pending callback waits for it; a
  response that changes a property triggers the server callbacks listening to it, and
  components it returns are new layout (their initial callbacks fire too);
- a `dcc.Interval` ticks every `interval` ms and triggers its `n_intervals` listeners.

Callbacks that run in the browser (clientside) cost the server nothing and are skipped;
so are pattern-matching ones, which in Beacon are all actions behind a click.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Prop = tuple[str, str]


@dataclass(frozen=True)
class Callback:
    """One entry of /_dash-dependencies, parsed."""

    output: str
    outputs: tuple[Prop, ...]
    multi: bool
    inputs: tuple[Prop, ...]
    state: tuple[Prop, ...]
    server: bool
    initial: bool

    @property
    def name(self) -> str:
        """Named by its first output's component id, as the report lists callbacks."""
        return self.outputs[0][0]


def parse_dependencies(deps: list[dict[str, Any]]) -> list[Callback]:
    """Server and clientside callbacks with plain string ids (pattern-matching ones left out)."""
    parsed = []
    for dep in deps:
        ids = [i["id"] for i in dep["inputs"] + dep["state"]]
        if dep["output"].count("{") or any(i.startswith("{") for i in ids):
            continue
        multi = dep["output"].startswith("..")
        parts = dep["output"].strip(".").split("...") if multi else [dep["output"]]
        outputs = tuple(_prop(p) for p in parts)
        parsed.append(
            Callback(
                output=dep["output"],
                outputs=outputs,
                multi=multi,
                inputs=tuple((i["id"], i["property"]) for i in dep["inputs"]),
                state=tuple((s["id"], s["property"]) for s in dep["state"]),
                server=not dep.get("clientside_function"),
                initial=not dep.get("prevent_initial_call"),
            )
        )
    return parsed


def _prop(part: str) -> Prop:
    component, _, prop = part.rpartition(".")
    # `allow_duplicate` outputs carry an "@<hash>" suffix on the property.
    return component, prop.split("@")[0]


def walk_components(tree: Any) -> Iterator[dict[str, Any]]:
    """Every component (a dict with type, namespace and props) anywhere in a layout value."""
    if isinstance(tree, list):
        for item in tree:
            yield from walk_components(item)
    elif isinstance(tree, dict):
        if "type" in tree and "namespace" in tree and isinstance(tree.get("props"), dict):
            yield tree
            for value in tree["props"].values():
                yield from walk_components(value)
        else:
            for value in tree.values():
                yield from walk_components(value)


@dataclass
class PageState:
    """The browser tab: components on screen and their current property values."""

    callbacks: list[Callback]
    types: dict[str, str] = field(default_factory=dict)
    props: dict[Prop, Any] = field(default_factory=dict)

    def add_layout(self, tree: Any) -> set[str]:
        """Register the components of a layout piece; returns the ids it brought."""
        new = set()
        for component in walk_components(tree):
            cid = component["props"].get("id")
            if not isinstance(cid, str):
                continue
            new.add(cid)
            self.types[cid] = component["type"]
            for prop, value in component["props"].items():
                if prop != "children" or not isinstance(value, (dict, list)):
                    self.props[(cid, prop)] = value
        return new

    def initial_callbacks(self, new_ids: set[str]) -> list[Callback]:
        """Server callbacks the renderer fires when `new_ids` appear."""
        return [
            cb
            for cb in self.callbacks
            if cb.server
            and cb.initial
            and all(i in self.types for i, _ in cb.inputs)
            and any(i in new_ids for i, _ in cb.inputs + cb.outputs)
        ]

    def listeners(self, changed: set[Prop]) -> list[Callback]:
        """Server callbacks triggered by changed properties."""
        return [
            cb
            for cb in self.callbacks
            if cb.server
            and any(p in changed for p in cb.inputs)
            and all(i in self.types for i, _ in cb.inputs)
        ]

    def intervals(self) -> dict[str, float]:
        """Seconds between ticks of each on-screen Interval that a server callback listens to."""
        found = {}
        for cid, kind in self.types.items():
            if kind != "Interval" or self.props.get((cid, "disabled")):
                continue
            if self.listeners({(cid, "n_intervals")}):
                found[cid] = float(self.props.get((cid, "interval")) or 1000) / 1000
        return found

    def request(self, cb: Callback, changed: set[Prop]) -> dict[str, Any]:
        """The `/_dash-update-component` body the renderer would send now."""
        outputs = [{"id": c, "property": p} for c, p in cb.outputs]

        def with_value(items: tuple[Prop, ...]) -> list[dict[str, Any]]:
            out = []
            for c, p in items:
                item: dict[str, Any] = {"id": c, "property": p}
                if (c, p) in self.props:
                    item["value"] = self.props[(c, p)]
                out.append(item)
            return out

        return {
            "output": cb.output,
            "outputs": outputs if cb.multi else outputs[0],
            "inputs": with_value(cb.inputs),
            "changedPropIds": [f"{c}.{p}" for c, p in cb.inputs if (c, p) in changed],
            "state": with_value(cb.state),
        }

    def apply(self, answer: dict[str, Any]) -> tuple[set[Prop], set[str]]:
        """Store a callback's response; returns the properties changed and new component ids."""
        changed: set[Prop] = set()
        new_ids: set[str] = set()
        for cid, values in (answer.get("response") or {}).items():
            for prop, value in values.items():
                self.props[(cid, prop)] = value
                changed.add((cid, prop))
                if prop == "children":
                    new_ids |= self.add_layout(value)
        return changed, new_ids
