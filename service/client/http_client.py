"""REST client (httpx)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from ..schemas import Person, PoseOptions, PoseResult
from .base import Boxes, ClientError


def result_from_json(body: dict[str, Any]) -> PoseResult:
    persons = tuple(
        Person(
            bbox=tuple(p["bbox"]),  # type: ignore[arg-type]
            bbox_score=p["bbox_score"],
            score=p["score"],
            keypoints=np.array([[k["x"], k["y"], k["score"]] for k in p["keypoints"]], dtype=np.float32),
            track_id=p.get("track_id"),
        )
        for p in body["persons"]
    )
    return PoseResult(
        image_size=(body["image_size"]["width"], body["image_size"]["height"]),
        persons=persons,
        model=body["model"]["name"],
        trained=body["model"]["trained"],
        boxes_source=body.get("boxes_source", "client"),
        timings={k: v / 1000.0 for k, v in body.get("timings_ms", {}).items()},
        joint_names=tuple(k["name"] for k in body["persons"][0]["keypoints"]) if body["persons"] else (),
    )


def _error(resp: httpx.Response) -> ClientError:
    try:
        body = resp.json()
        code = str(body.get("type", "")).rsplit(":", 1)[-1] or "http_error"
        msg = str(body.get("detail", resp.text))
    except ValueError:
        code, msg = "http_error", resp.text[:200]
    ra = resp.headers.get("retry-after")
    return ClientError(code, msg, resp.status_code, float(ra) if ra else None)


class HttpPoseClient:
    """REST client. Transport failures (refused, unresolvable, timed out) raise :class:`ClientError` with
    code ``unavailable`` or ``timeout`` like server-side errors, never an ``httpx`` exception."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 60.0) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._base = base_url.rstrip("/")
        self._timeout = timeout_s
        self._http = httpx.Client(base_url=self._base, headers=headers, timeout=timeout_s)

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise ClientError(
                "timeout", f"no answer from {self._base}{path} within {self._timeout:g} s", "timeout"
            ) from None
        except httpx.TransportError as exc:
            raise ClientError(
                "unavailable", f"cannot reach {self._base}: {exc or type(exc).__name__}", "unreachable"
            ) from None

    def _fields(self, boxes: Boxes, options: PoseOptions | None, model: str | None = None) -> dict[str, str]:
        data: dict[str, str] = {"model": model} if model else {}
        if boxes is not None:
            data["boxes"] = json.dumps([list(map(float, b)) for b in boxes])
        if options is not None:
            if options.flip is not None:
                data["flip"] = "true" if options.flip else "false"
            data["min_score"] = str(options.min_score)
            if options.max_persons is not None:
                data["max_persons"] = str(options.max_persons)
            data["nms"] = "true" if options.oks_nms else "false"
        return data

    def estimate(
        self,
        image: bytes,
        boxes: Boxes = None,
        options: PoseOptions | None = None,
        timeout_s: float | None = None,
        model: str | None = None,
    ) -> PoseResult:
        headers = {"X-Request-Timeout-Ms": str(int(timeout_s * 1000))} if timeout_s else {}
        resp = self._request(
            "POST", "/v1/pose", files={"image": ("image", image)}, data=self._fields(boxes, options, model),
            headers=headers,
        )  # fmt: skip
        if resp.status_code != 200:
            raise _error(resp)
        return result_from_json(resp.json())

    def estimate_batch(
        self,
        images: Sequence[bytes],
        options: PoseOptions | None = None,
        timeout_s: float | None = None,
        model: str | None = None,
    ) -> list[PoseResult | ClientError]:
        headers = {"X-Request-Timeout-Ms": str(int(timeout_s * 1000))} if timeout_s else {}
        files = [("images", (f"image{i}", im)) for i, im in enumerate(images)]
        resp = self._request(
            "POST", "/v1/pose/batch", files=files, data=self._fields(None, options, model), headers=headers
        )
        if resp.status_code != 200:
            raise _error(resp)
        out: list[PoseResult | ClientError] = []
        for item in resp.json()["items"]:
            if "result" in item and item["result"] is not None:
                out.append(result_from_json(item["result"]))
            else:
                e = item["error"]
                out.append(ClientError(str(e["type"]).rsplit(":", 1)[-1], e["detail"], e["status"]))
        return out

    def models(self) -> dict[str, Any]:
        resp = self._request("GET", "/v1/models")
        if resp.status_code != 200:
            raise _error(resp)
        body: dict[str, Any] = resp.json()
        return body

    def close(self) -> None:
        self._http.close()
