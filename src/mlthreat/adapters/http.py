"""An HTTP JSON endpoint as a black-box model: the attacker's real view of a serving API.

Rows are sent in batches inside a request template (the string "$rows" in it is replaced with
the batch, as lists of numbers or as records), the answer is read at a dotted path, and every
row counts as a query. A rate limit spaces the requests; 429 and 5xx answers are retried with
backoff; anything else becomes a ProbeError naming the URL and status. Only the standard
library is used (urllib), so probing an endpoint needs no extra install.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import numpy as np

from mlthreat.adapters.interface import Capabilities, ModelAdapter, two_columns
from mlthreat.errors import ProbeError

PLACEHOLDER = "$rows"


def _fill(template: Any, rows: list[Any]) -> Any:
    if template == PLACEHOLDER:
        return rows
    if isinstance(template, dict):
        return {k: _fill(v, rows) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, rows) for v in template]
    return template


def _dig(answer: Any, path: str) -> Any:
    for part in [p for p in path.split(".") if p]:
        try:
            answer = answer[int(part)] if isinstance(answer, list) else answer[part]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ProbeError(f"the endpoint's answer has nothing at {path!r} "
                             f"(stopped at {part!r})") from exc
    return answer


class HttpAdapter(ModelAdapter):
    """Parameters: url; request (JSON template with "$rows", default {"rows": "$rows"});
    response (dotted path to one answer per row, default "predictions"); output
    ("probabilities": a list of class probabilities or P(positive) per row, or "label"); batch
    (rows per request, 64); rate (requests per second, None for no limit); headers; encode
    (rows -> JSON items, e.g. records by column; default: lists of numbers); timeout (s)."""

    def __init__(self, url: str, request: Any = None, response: str = "predictions",
                 output: str = "probabilities", batch: int = 64, rate: float | None = None,
                 headers: dict[str, str] | None = None,
                 encode: Callable[[np.ndarray], list[Any]] | None = None,
                 timeout: float = 10.0, retries: int = 3) -> None:
        super().__init__()
        self.url, self.request, self.response, self.output = url, request, response, output
        self.batch, self.rate, self.headers = batch, rate, headers or {}
        self.encode, self.timeout, self.retries = encode, timeout, retries
        self.capabilities = Capabilities(scores=output == "probabilities")
        self.requests = 0
        self._last = 0.0

    def _proba(self, x: Any) -> Any:
        return two_columns(np.asarray(self._answers(x), dtype=float))

    def _labels(self, x: Any) -> Any:
        answers = self._answers(x)
        if self.output == "label":
            return np.asarray(answers)
        return np.argmax(two_columns(np.asarray(answers, dtype=float)), axis=1)

    def _answers(self, x: Any) -> list[Any]:
        # numbers, unless an encoder takes the items as they are (texts)
        rows = np.asarray(x) if self.encode is not None else np.asarray(x, dtype=float)
        out: list[Any] = []
        for i in range(0, len(rows), self.batch):
            chunk = rows[i:i + self.batch]
            items = self.encode(chunk) if self.encode else chunk.tolist()
            answer = _dig(self._post(_fill(self.request or {"rows": PLACEHOLDER}, items)),
                          self.response)
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise ProbeError(f"{self.url}: expected {len(chunk)} answers at "
                                 f"{self.response!r}, got {type(answer).__name__}"
                                 f"{f' of {len(answer)}' if isinstance(answer, list) else ''}")
            out.extend(answer)
        return out

    def _post(self, body: Any) -> Any:
        data = json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            self._wait()
            req = urllib.request.Request(self.url, data=data, method="POST", headers={
                "Content-Type": "application/json", **self.headers})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    self.requests += 1
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                if (exc.code == 429 or exc.code >= 500) and attempt < self.retries:
                    time.sleep(0.2 * 2 ** attempt)
                    continue
                raise ProbeError(f"{self.url}: HTTP {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                raise ProbeError(f"{self.url}: no answer ({exc})") from exc
            except json.JSONDecodeError as exc:
                raise ProbeError(f"{self.url}: the answer is not JSON ({exc})") from exc
        raise ProbeError(f"{self.url}: still failing after {self.retries} retries")

    def _wait(self) -> None:
        if self.rate:
            gap = 1.0 / self.rate - (time.monotonic() - self._last)
            if gap > 0:
                time.sleep(gap)
        self._last = time.monotonic()
