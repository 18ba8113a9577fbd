"""Image and text models behind an HTTP endpoint: what the probes send is what the model file
would be given (checked against the model itself), the probes measure the same as on the file,
and entries that mean nothing for an endpoint are refused with what to change."""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from mlthreat.catalog import load_catalog  # noqa: E402
from mlthreat.errors import InputError  # noqa: E402
from mlthreat.pipeline import load_pipeline  # noqa: E402
from mlthreat.probes.execute import attempt  # noqa: E402
from mlthreat.probes.target import BUDGETS, Target, prepare  # noqa: E402
from tests.conftest import EXAMPLES, reply_json  # noqa: E402

IMAGES = EXAMPLES / "image-community"
TWEETS = EXAMPLES / "support-tweets"


class _Api(BaseHTTPRequestHandler):
    """The examples' own models served the ways real APIs take their inputs."""

    cnn: Any = None
    text: Any = None
    seen: dict[str, list[Any]] = {}

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
        items = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["rows"]
        self.seen.setdefault(self.path, []).extend(items)
        if self.path == "/text":
            proba = self.text.predict_proba(items)
        else:
            if self.path == "/hwc":
                cube = np.array(items).transpose(0, 3, 1, 2)
            elif self.path == "/png":       # 0-255 back to the data's 0-16
                cube = np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(i))),
                                            float)[None] for i in items]) / 255 * 16
            else:
                cube = np.array(items)
            with torch.no_grad():
                proba = torch.softmax(self.cnn(torch.tensor(cube, dtype=torch.float32) / 16),
                                      1).numpy()
        reply_json(self, {"predictions": proba.tolist()})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    import importlib.util
    spec = importlib.util.spec_from_file_location("example_net", IMAGES / "net.py")
    assert spec is not None and spec.loader is not None
    net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(net)
    cnn = net.build()
    cnn.load_state_dict(torch.load(IMAGES / "models" / "moderation.pt", weights_only=True))
    _Api.cnn = cnn.eval()
    _Api.text = joblib.load(TWEETS / "models" / "triage.joblib")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _target(tmp_path: Path, example: Path, endpoint: str | None, name: str,
            drop_module: bool = True, queries: int = 1000) -> Target:
    folder = tmp_path / name
    shutil.copytree(example, folder)
    text = (folder / "pipeline.yaml").read_text().replace("      queries: 1000\n",
                                                          f"      queries: {queries}\n")
    if endpoint is not None:
        anchor = f"      queries: {queries}\n"
        assert anchor in text
        text = text.replace(anchor, anchor + f"      endpoint: {endpoint}\n", 1)
        if drop_module:
            text = text.replace("      module: net.py:build", "      ")
    (folder / "pipeline.yaml").write_text(text)
    pipeline = load_pipeline(folder / "pipeline.yaml", load_catalog())
    return prepare(pipeline, next(c for c in pipeline.spec.components if c.probe), trust=False)


@pytest.mark.parametrize("encoding", ["chw", "hwc", "png"])
def test_an_image_endpoint_is_sent_the_images_the_model_file_would_read(
        api: str, encoding: str, tmp_path: Path) -> None:
    file = _target(tmp_path, IMAGES, None, "file")
    served = _target(tmp_path, IMAGES, f"{{url: '{api}/{encoding}', images: {encoding}}}", "api")
    assert served.artifact == f"{api}/{encoding}" and "gradients" not in served.capabilities
    x = file.x[file.test][:40]
    _Api.seen.clear()
    got = served.adapter.predict_proba(x)
    assert served.adapter.queries == 40
    if encoding == "png":
        # the upload holds 8-bit grey levels: the model sees the pixels rounded to them
        levels = np.rint(x / 16 * 255) / 255 * 16
        assert not np.allclose(levels, x)
        assert np.allclose(got, file.adapter.predict_proba(levels), atol=1e-6)
        picture = Image.open(io.BytesIO(base64.b64decode(_Api.seen["/png"][0])))
        assert picture.mode == "L" and picture.size == (8, 8)
    else:
        assert np.allclose(got, file.adapter.predict_proba(x), atol=1e-6)
        shape = np.array(_Api.seen[f"/{encoding}"]).shape
        assert shape == ((40, 1, 8, 8) if encoding == "chw" else (40, 8, 8, 1))


def test_probes_through_an_image_endpoint_measure_what_they_measure_on_the_file(
        api: str, tmp_path: Path) -> None:
    """The endpoint serves the file's model with exact JSON numbers: the Square attack, with the
    same seed, takes the same steps and finds the same images."""
    file = _target(tmp_path, IMAGES, None, "file")
    served = _target(tmp_path, IMAGES, f"{{url: '{api}/chw'}}", "api")
    on_file = attempt("evasion-square", file, BUDGETS["quick"], 1, seed=0)
    on_api = attempt("evasion-square", served, BUDGETS["quick"], 1, seed=0)
    assert not isinstance(on_file, str) and not isinstance(on_api, str)
    assert on_api.value == on_file.value and on_api.summary == on_file.summary
    assert on_api.artifact == f"{api}/chw"
    assert attempt("evasion-whitebox", served, BUDGETS["quick"], 1, seed=0).startswith(
        "white-box evasion needs gradients")


def test_a_text_endpoint_is_sent_texts_and_misspelt_like_the_file(api: str,
                                                                  tmp_path: Path) -> None:
    file = _target(tmp_path, TWEETS, None, "file")
    served = _target(tmp_path, TWEETS, f"{{url: '{api}/text'}}", "api")
    assert served.texts == file.texts and served.text and "records" not in served.capabilities
    _Api.seen.clear()
    texts = list(file.texts[:25])
    assert np.allclose(served.reader.predict_proba(texts), file.reader.predict_proba(texts))
    assert _Api.seen["/text"] == texts                  # the texts themselves, in order
    settings = BUDGETS["quick"]
    on_file = attempt("evasion-text", file, settings, 1, seed=0)
    on_api = attempt("evasion-text", served, settings, 1, seed=0)
    assert not isinstance(on_file, str) and not isinstance(on_api, str)
    assert on_api.value == on_file.value and on_api.summary == on_file.summary


def test_a_text_endpoint_answers_the_attackers_own_features_by_their_texts(
        api: str, tmp_path: Path) -> None:
    """Rows are the attacker's TF-IDF of the texts (the vectoriser is behind the URL): each row
    is answered by sending its text, a made-up row is refused, and extraction learns a copy
    from natural queries that beats the majority class on unseen texts."""
    from mlthreat.errors import ProbeError
    served = _target(tmp_path, TWEETS, f"{{url: '{api}/text'}}", "api", queries=300)
    model = _Api.text
    rows = served.x[served.test][:30]
    expected = model.predict_proba([served.texts[i] for i in served.test[:30]])
    assert np.allclose(served.adapter.predict_proba(rows), expected)
    with pytest.raises(ProbeError, match="stand for no text"):
        served.adapter.predict(rows + 0.01)
    ev = attempt("extraction", served, BUDGETS["quick"], 1, seed=0)
    assert not isinstance(ev, str)
    majority = max(np.mean(served.y[served.test]), 1 - np.mean(served.y[served.test]))
    assert ev.value > majority + 0.05
    why = attempt("poisoning", served, BUDGETS["quick"], 1, seed=0)
    assert isinstance(why, str) and "only the model file holds" in why
    assert "train:" not in why


@pytest.mark.parametrize(("example", "endpoint", "drop_module", "message"), [
    (IMAGES, "{url: 'http://127.0.0.1:9/x', records: false}", True, "endpoint.records: not for "
     "images"),
    (IMAGES, "{url: 'http://127.0.0.1:9/x'}", False, "module: not with an endpoint"),
    (TWEETS, "{url: 'http://127.0.0.1:9/x', images: png}", True, "endpoint.images: only for"),
    (TWEETS, "{url: 'http://127.0.0.1:9/x', records: true}", True, "endpoint.records: not for "
     "text"),
])
def test_entries_an_endpoint_for_images_or_text_does_not_use_are_refused(
        example: Path, endpoint: str, drop_module: bool, message: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=message):
        _target(tmp_path, example, endpoint, "api", drop_module)


def test_a_tables_endpoint_takes_no_image_encoding(tmp_path: Path) -> None:
    folder = tmp_path / "credit"
    shutil.copytree(EXAMPLES / "credit-scoring", folder)
    spec = folder / "pipeline.yaml"
    anchor = "      goal: good                # what an applicant gaming the API wants"
    text = spec.read_text()
    assert anchor in text
    spec.write_text(text.replace(anchor, "      endpoint: {url: 'http://127.0.0.1:9/', images: "
                                         "png}\n" + anchor, 1))
    pipeline = load_pipeline(spec, load_catalog())
    comp = next(c for c in pipeline.spec.components if c.id == "scoring_api")
    with pytest.raises(InputError, match=r"pipeline\.yaml:\d+:\d+: .*endpoint\.images: only"):
        prepare(pipeline, comp, trust=False)


def test_png_uploads_need_one_three_or_four_channels() -> None:
    from mlthreat.pipeline.spec import ProbeImages
    from mlthreat.probes.target import image_items
    with pytest.raises(InputError, match="png holds 1, 3 or 4 channels"):
        image_items(ProbeImages(shape=(2, 4, 4), range=(0, 1)), "png")
    rgb = image_items(ProbeImages(shape=(3, 2, 2), range=(0, 255)), "png")
    cube = np.arange(12, dtype=float).reshape(1, 3, 2, 2) * 20
    back = np.asarray(Image.open(io.BytesIO(base64.b64decode(rgb(cube.reshape(1, -1))[0]))))
    assert back.shape == (2, 2, 3) and np.array_equal(back.transpose(2, 0, 1), cube[0])
