"""The elicitation interview: one person's mental model, component by component.

Like the study's interviews, it walks the pipeline from where data comes in to where the model's
output goes, and at each component asks what could go wrong, what defends it and against what,
who is responsible, whether an attacker would gain anything, and how sure the person is. It
offers the catalog's plain-language threats and controls to pick from, and takes free answers.

The engine never touches a terminal: an `Io` asks and says. The CLI gives it the terminal, piped
standard input, or a file of answers. After every component it calls `save`, so an interrupted
interview resumes where it stopped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mlthreat.catalog import Catalog
from mlthreat.errors import InputError
from mlthreat.perception.model import Defense, Perception, Responsibility, View
from mlthreat.pipeline import Component, Pipeline
from mlthreat.results import Assessment

if TYPE_CHECKING:
    from mlthreat.perception.loader import Mappers
    from mlthreat.perception.mapping import Mapping

QUESTIONS = ("threats", "defenses", "responsibility", "attacker_gain", "reason", "confidence")
RESPONSIBILITY = {
    "us": Responsibility.us, "we": Responsibility.us, "me": Responsibility.us,
    "other team": Responsibility.other_team, "other_team": Responsibility.other_team,
    "other": Responsibility.other_team, "provider": Responsibility.provider,
    "vendor": Responsibility.provider, "nobody": Responsibility.nobody,
    "no one": Responsibility.nobody, "unsure": Responsibility.unsure,
    "don't know": Responsibility.unsure, "?": Responsibility.unsure,
}
GAIN: dict[str, bool | str] = {"yes": True, "y": True, "no": False, "n": False,
                               "unsure": "unsure", "?": "unsure", "maybe": "unsure"}
CONFIDENCE = ("low", "medium", "high")


class Io(Protocol):
    def ask(self, component: str, question: str, prompt: str) -> str:
        """The answer; raises EOFError when there are no more answers."""

    def say(self, text: str) -> None: ...

    @property
    def interactive(self) -> bool:
        """True when a person can be asked again after an unclear answer."""


class ScriptedIo:
    """Answers from a list, one per question, in order: for piped stdin and for tests."""

    def __init__(self, answers: list[str], say: Callable[[str], None] | None = None) -> None:
        self.answers = list(answers)
        self.said: list[str] = []
        self._say = say

    interactive = False

    def ask(self, component: str, question: str, prompt: str) -> str:
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    def say(self, text: str) -> None:
        self.said.append(text)
        if self._say:
            self._say(text)


class AnswersFileIo:
    """Answers from a mapping {component: {question: answer}}; absent components are skipped."""

    interactive = False

    def __init__(self, answers: dict[str, dict[str, Any]],
                 identity: dict[str, str] | None = None) -> None:
        self.answers = answers
        self.identity = identity or {}   # respondent, role, team given in the file

    def covers(self, component: str) -> bool:
        return component in self.answers

    def ask(self, component: str, question: str, prompt: str) -> str:
        value = self.answers.get(component, {}).get(question, "")
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return "" if value is None else str(value)

    def say(self, text: str) -> None:
        pass


def _labels(n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [letters[i] if i < 26 else letters[i // 26 - 1] + letters[i % 26] for i in range(n)]


@dataclass
class Interview:
    pipeline: Pipeline
    catalog: Catalog
    assessment: Assessment
    io: Io
    save: Callable[[Perception], None] = field(default=lambda p: None)
    mappers: Mappers | None = None   # free text is mapped; a vague answer is asked about again

    def run(self, start: Perception, only: Callable[[str], bool] | None = None) -> Perception:
        """Interview the components `start` has no view of yet; returns the completed file."""
        views = list(start.views)
        done = {v.component for v in views}
        todo = [c for c in self.pipeline.spec.components if c.id not in done]
        current = start.model_copy(update={"complete": False})
        for i, comp in enumerate(todo, start=1):
            if only is not None and not only(comp.id):
                continue
            self.io.say(f"\n[{len(done) + i}/{len(self.pipeline.spec.components)}] {comp.label} "
                        f"({comp.kind.value}, {comp.exposure.value}"
                        f"{', owner ' + comp.owner if comp.owner else ''})")
            views.append(self._component(comp))
            current = current.model_copy(update={"views": list(views)})
            self.save(current)
        finished = current.model_copy(update={"complete": True})
        self.save(finished)
        return finished

    # ------------------------------------------------------------------ one component
    def _component(self, comp: Component) -> View:
        threats = sorted({f.threat_id for f in self.assessment.findings if f.component == comp.id},
                         key=lambda t: self.catalog.threat(t).name)
        for n, tid in enumerate(threats, start=1):
            self.io.say(f"  {n:>2}. {self.catalog.threat(tid).name}")
        prompt = ("Which of these, or what else, could an attacker do here? (numbers and/or "
                  "your own words, comma-separated; ? explains each; Enter: none)")
        answer = self.io.ask(comp.id, "threats", prompt)
        if answer.strip() == "?":
            for n, tid in enumerate(threats, start=1):
                self.io.say(f"  {n:>2}. {self.catalog.threat(tid).description}")
            answer = self.io.ask(comp.id, "threats", prompt)
        seen = [self._clarified(self._item(part, threats, comp.id, "threats"), threats, comp.id)
                for part in _split(answer, ",")]
        controls = sorted({c.id for t in threats for c, _ in self.catalog.mitigations(t)},
                          key=lambda c: self.catalog.control(c).name)  # type: ignore[union-attr]
        labels = dict(zip(_labels(len(controls)), controls, strict=True))
        for label, cid in labels.items():
            self.io.say(f"  {label:>2}) {self.catalog.control(cid).name}")  # type: ignore[union-attr]
        defenses = self._defenses(comp.id, labels, threats)
        who, responsible = self._responsibility(comp.id)
        gain = self._choice(comp.id, "attacker_gain", "Would an attacker gain anything by "
                            "attacking here? [yes / no / unsure]", GAIN)
        reason = self.io.ask(comp.id, "reason", "Why? (optional)").strip() or None
        confidence = self._choice(comp.id, "confidence", "How confident are you in these "
                                  "answers? [low / medium / high] (Enter: skip)",
                                  {c: c for c in CONFIDENCE}, optional=True)
        return View(component=comp.id, threats=seen, defenses=defenses, responsibility=who,
                    responsible=responsible, attacker_gain=gain, reason=reason,
                    confidence=confidence)

    def _item(self, part: str, numbered: list[str], comp: str, key: str) -> str:
        if part.isdigit():
            n = int(part)
            if 1 <= n <= len(numbered):
                return numbered[n - 1]
            raise InputError(f"{comp}, {key}: there is no number {n} in the list "
                             f"(1-{len(numbered)}); use words for anything else")
        return part

    def _clarified(self, said: str, numbered: list[str], comp: str) -> str:
        """Free text that names no single threat, or names one only weakly, asked about again:
        a person can confirm the closest entry, pick a number, or say it in other words; never
        a silent guess."""
        if self.mappers is None or not self.io.interactive or said in numbered:
            return said
        mapping = self.mappers.threats.map(said)
        if mapping.settled:
            return said
        closest = self.catalog.threat(mapping.best).name.lower() if mapping.best else None
        def number(answer: str) -> str | None:
            return self._item(answer, numbered, comp, "threats") if answer.isdigit() else None
        return self._asked_back(said, mapping, closest, comp, ("threat", "a number", number))

    def _asked_back(self, said: str, mapping: Mapping, closest: str | None, comp: str,
                    kind: tuple[str, str, Callable[[str], str | None]]) -> str:
        """The question about `said`; `kind`: what it should name, how the listed ones are
        picked ("a number"), and the entry a picked one is (None when the answer picks none)."""
        what, pick_word, pick = kind
        if mapping.target is not None:
            question = f"'{said}' reads as {closest} (similarity {mapping.score:.2f})."
        elif mapping.how == "vague":
            question = f"'{said}' is too general to name one {what}."
        else:
            question = f"'{said}' names no {what} mlthreat knows."
        hint = f" Did you mean {closest}? [yes / {pick_word} / other words / Enter: keep it]" \
            if closest else f" [{pick_word} / other words / Enter: keep it]"
        answer = self.io.ask(comp, "clarify", question + hint).strip()
        if answer.lower() in ("no", "n", "nein") and mapping.target is not None:
            # a weak match the person rejects: their words alone would map to it again
            answer = self.io.ask(comp, "clarify", f"Which {what} then? [{pick_word} / other "
                                 f"words / Enter: keep '{said}', read as {closest}]").strip()
        if not answer or answer.lower() in ("no", "n", "nein"):
            return said
        if answer.lower() in ("yes", "y", "ja") and mapping.best:
            return str(mapping.best)
        return pick(answer) or answer

    def _defenses(self, comp: str, labels: dict[str, str], threats: list[str]) -> list[Defense]:
        answer = self.io.ask(comp, "defenses", "Which defenses do you have here, and against "
                             "what? (e.g. 'a against 1, 2; our firewall'; Enter: none)")
        out = []
        for part in _split(answer, ";"):
            control, *rest = re.split(r"\s+against\s+", part, maxsplit=1, flags=re.IGNORECASE)
            against = rest[0] if rest else ""
            control = labels.get(control.strip().lower(), control.strip())
            if control not in labels.values():
                control = self._clarified_control(control, labels, comp)
            out.append(Defense(control=control, against=[
                self._item(x, threats, comp, "defenses") for x in _split(against, ",")]))
        return out

    def _clarified_control(self, said: str, labels: dict[str, str], comp: str) -> str:
        """A defense in the person's own words, asked about as threats are."""
        if self.mappers is None or not self.io.interactive:
            return said
        mapping = self.mappers.controls.map(said)
        if mapping.settled:
            return said
        best = self.catalog.control(mapping.best) if mapping.best else None
        closest = best.name.lower() if best else None
        return self._asked_back(said, mapping, closest, comp,
                                ("defense", "a letter", lambda a: labels.get(a.lower())))

    def _responsibility(self, comp: str) -> tuple[Responsibility | None, str | None]:
        prompt = ("Who is responsible for securing this component? [us / other team / provider"
                  " / nobody / unsure] (add who after a colon, e.g. 'other team: platform')")
        answer = self.io.ask(comp, "responsibility", prompt).strip()
        if not answer:
            return None, None
        head, _, who = answer.partition(":")
        key = head.strip().lower()
        if key not in RESPONSIBILITY:
            answer = self._retry(comp, "responsibility", prompt, answer, RESPONSIBILITY)
            head, _, who = answer.partition(":")
            key = head.strip().lower()
        return RESPONSIBILITY[key], (who.strip() or None)

    def _choice(self, comp: str, key: str, prompt: str, options: dict[str, Any],
                optional: bool = False) -> Any:
        answer = self.io.ask(comp, key, prompt).strip().lower()
        if not answer and (optional or key == "attacker_gain"):
            return None
        if answer not in options:
            answer = self._retry(comp, key, prompt, answer, options).strip().lower()
        return options[answer]

    def _retry(self, comp: str, key: str, prompt: str, answer: str,
               options: dict[str, Any]) -> str:
        choices = " / ".join(dict.fromkeys(str(o) for o in options))
        if not self.io.interactive:
            raise InputError(f"{comp}, {key}: {answer!r} is not one of: {choices}")
        for _ in range(3):
            self.io.say(f"  please answer one of: {choices}")
            answer = self.io.ask(comp, key, prompt)
            if answer.partition(":")[0].strip().lower() in options:
                return answer
        raise InputError(f"{comp}, {key}: no valid answer after three tries")


def _split(text: str, sep: str) -> list[str]:
    return [p.strip() for p in text.split(sep) if p.strip()]
