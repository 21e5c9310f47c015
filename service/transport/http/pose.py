"""Pose routes: ``POST /v1/pose``, ``POST /v1/pose/batch``, ``POST /v1/pose/render``, ``GET /v1/models``.

Images come as multipart field ``image`` (options as form fields, ``boxes`` holding JSON) or as a raw body with
``Content-Type: image/jpeg|png|webp`` (options as query parameters). The routes only translate: the engine
decides (queue, batching, deadlines, overload).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData, UploadFile

from ...errors import InvalidInput, PoseServiceError, UnsupportedMediaType
from ...schemas import PoseOptions, PoseRequest, PoseResult, parse_boxes_json
from .models import BatchResponse, ModelsResponse, PoseResponse, Problem
from .problems import PROBLEM_JSON, error_response

router = APIRouter(prefix="/v1", tags=["pose"])

RAW_TYPES = ("image/jpeg", "image/png", "image/webp")
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "description": "undecodable image or invalid options",
        "content": {PROBLEM_JSON: {}},
    },
    401: {"model": Problem, "description": "missing or wrong API key"},
    413: {"model": Problem, "description": "body or image too large (bytes or pixels)"},
    404: {"model": Problem, "description": "unknown_model: the request names a model not served here"},
    415: {"model": Problem, "description": "not JPEG, PNG or WebP"},
    422: {"model": Problem, "description": "invalid boxes"},
    429: {"model": Problem, "description": "overloaded: retry after the Retry-After header"},
    503: {"model": Problem, "description": "not ready (warming up, draining)"},
    504: {"model": Problem, "description": "deadline exceeded"},
}
_OPTIONS_DOC = {
    "boxes": "JSON list of [x, y, w, h] or [x, y, w, h, score] in image px; [] = no persons; absent = detect",
    "flip": "flip test (true/false; default: server setting)",
    "min_score": "drop persons whose score is below this",
    "max_persons": "keep at most this many persons",
    "nms": "OKS-NMS (default true)",
    "format": "posesvc (default) | coco",
    "image_id": "COCO image id (required with format=coco)",
    "model": "served model (card name, see GET /v1/models); absent = the server's default",
}


def _request_body_doc(extra_fields: dict[str, Any] | None = None, many: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {k: {"type": "string", "description": v} for k, v in _OPTIONS_DOC.items()}
    if many:
        props["images"] = {"type": "array", "items": {"type": "string", "format": "binary"}}
    else:
        props["image"] = {"type": "string", "format": "binary"}
    props.update(extra_fields or {})
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {"type": "object", "properties": props, "required": ["images" if many else "image"]}
        }
    }
    if not many:
        for t in RAW_TYPES:
            content[t] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": True, "content": content}}


@dataclass
class ParsedOptions:
    options: PoseOptions
    boxes: np.ndarray | None
    fmt: str
    image_id: int | None
    deadline: float | None
    model: str | None = None


def _get(form: FormData | None, request: Request, key: str) -> str | None:
    if form is not None and key in form:
        v = form[key]
        return v if isinstance(v, str) else None
    return request.query_params.get(key)


def _bool(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"{name} must be true or false, got {value!r}")


def parse_options(request: Request, form: FormData | None) -> ParsedOptions:
    settings = request.app.state.settings

    def g(key: str) -> str | None:
        return _get(form, request, key)

    try:
        min_score = float(g("min_score") or 0.0)
    except ValueError:
        raise InvalidInput(f"min_score must be a number, got {g('min_score')!r}") from None
    if not np.isfinite(min_score):
        raise InvalidInput("min_score must be finite")
    mp = g("max_persons")
    try:
        max_persons = int(mp) if mp not in (None, "") else None
    except ValueError:
        raise InvalidInput(f"max_persons must be an integer, got {mp!r}") from None
    if max_persons is not None and max_persons < 0:
        raise InvalidInput("max_persons must be >= 0")
    fmt = (g("format") or "posesvc").lower()
    if fmt not in ("posesvc", "coco"):
        raise InvalidInput(f"format must be posesvc or coco, got {fmt!r}")
    iid = g("image_id")
    image_id = None
    if iid not in (None, ""):
        try:
            image_id = int(iid)  # type: ignore[arg-type]
        except ValueError:
            raise InvalidInput(f"image_id must be an integer, got {iid!r}") from None
    if fmt == "coco" and image_id is None:
        raise InvalidInput("format=coco needs image_id")
    deadline = None
    dl = request.headers.get("x-request-timeout-ms")
    if dl:
        try:
            ms = float(dl)
        except ValueError:
            raise InvalidInput(f"X-Request-Timeout-Ms must be a number, got {dl!r}") from None
        if not np.isfinite(ms) or ms <= 0:
            raise InvalidInput("X-Request-Timeout-Ms must be a positive number of milliseconds")
        deadline = time.monotonic() + ms / 1000.0
    nms = _bool(g("nms"), "nms")
    opts = PoseOptions(
        flip=_bool(g("flip"), "flip"),
        min_score=min_score,
        max_persons=max_persons,
        oks_nms=True if nms is None else nms,
    )
    boxes = parse_boxes_json(g("boxes"), settings.max_boxes)
    return ParsedOptions(opts, boxes, fmt, image_id, deadline, (g("model") or "").strip() or None)


async def _read_form(request: Request, max_files: int) -> FormData:
    try:
        return await request.form(max_files=max_files, max_fields=64)
    except PoseServiceError:
        raise
    except Exception as exc:
        raise InvalidInput(f"the multipart body cannot be parsed: {exc}") from None


async def _upload_bytes(value: Any, field: str) -> bytes:
    if not isinstance(value, UploadFile):
        raise InvalidInput(f"multipart field {field!r} must be a file")
    data = await value.read()
    return bytes(data)


async def read_single(request: Request) -> tuple[bytes, ParsedOptions]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await _read_form(request, max_files=1)
        if "image" not in form:
            raise InvalidInput("multipart body has no 'image' file field")
        data = await _upload_bytes(form["image"], "image")
        return data, parse_options(request, form)
    if ctype in RAW_TYPES:
        body = await request.body()
        return body, parse_options(request, None)
    raise UnsupportedMediaType(
        f"Content-Type {ctype or '(none)'} is not supported; send multipart/form-data with an 'image' field, "
        "or a raw image/jpeg, image/png or image/webp body"
    )


def result_body(result: PoseResult, parsed: ParsedOptions, request_id: str, joint_names: Any) -> Any:
    if parsed.fmt == "coco":
        assert parsed.image_id is not None
        return result.to_coco(parsed.image_id)
    body = result.to_dict(result.joint_names or joint_names)
    body["request_id"] = request_id
    return body


async def _submit(
    request: Request, data: bytes | np.ndarray, parsed: ParsedOptions, render: Literal["png", "jpeg"] | None = None
) -> tuple[PoseResult, str]:
    engine = request.app.state.engine
    req = PoseRequest(
        image=data, boxes=parsed.boxes, options=parsed.options, deadline=parsed.deadline, model=parsed.model,
        render=render,
    )  # fmt: skip
    try:
        return await engine.submit(req), req.request_id
    except PoseServiceError as exc:
        exc.counted = True  # type: ignore[attr-defined]  # the engine's hooks counted the rejection
        raise


def _joint_names(request: Request) -> Any:
    """The default card's joint names (results carry their own model's; these are the fallback)."""
    cards = _cards(request)
    return cards[0].joint_names if cards else ()


@router.post(
    "/pose",
    response_model=PoseResponse,
    responses=_ERRORS,
    openapi_extra=_request_body_doc(),
    summary="Estimate poses on one image",
)
async def estimate(request: Request) -> Any:
    """Persons with the model's keypoints (names from its keypoint schema, e.g. 17 COCO joints).
    ``format=coco`` returns COCO results entries instead."""
    data, parsed = await read_single(request)
    result, rid = await _submit(request, data, parsed)
    t0 = time.perf_counter()
    resp = JSONResponse(result_body(result, parsed, rid, _joint_names(request)))
    request.app.state.metrics.stage_duration_seconds.labels(model=result.model, stage="serialize").observe(
        time.perf_counter() - t0
    )
    return resp


@router.post(
    "/pose/batch",
    response_model=BatchResponse,
    responses=_ERRORS,
    openapi_extra=_request_body_doc(many=True),
    summary="Estimate poses on several images (results in order)",
)
async def estimate_batch(request: Request) -> Any:
    """Multipart with several ``images`` (or repeated ``image``) file fields and shared options. Each item is
    ``{result}`` or ``{error}`` (a problem object): a bad image fails only its own item."""
    settings = request.app.state.settings
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise UnsupportedMediaType("the batch endpoint takes multipart/form-data with 'images' file fields")
    form = await _read_form(request, max_files=settings.max_batch_images)
    files = [v for k, v in form.multi_items() if k in ("images", "image")]
    if not files:
        raise InvalidInput("multipart body has no 'images' file fields")
    parsed = parse_options(request, form)
    datas = [await _upload_bytes(f, "images") for f in files]
    outcomes = await asyncio.gather(*[_submit(request, d, parsed) for d in datas], return_exceptions=True)
    items: list[dict[str, Any]] = []
    for out in outcomes:
        if isinstance(out, PoseServiceError):
            items.append({"error": json.loads(bytes(error_response(out).body))})
        elif isinstance(out, BaseException):
            raise out
        else:
            res, rid = out
            items.append({"result": result_body(res, parsed, rid, _joint_names(request))})
    return JSONResponse({"items": items})


@router.post(
    "/pose/render",
    responses={
        **_ERRORS,
        200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "the drawing"},
    },
    openapi_extra=_request_body_doc(
        {"render_format": {"type": "string", "description": "png (default) | jpeg"}}
    ),
    summary="Estimate and return the image with boxes and skeletons drawn",
)
async def render(request: Request) -> Response:
    data, parsed = await read_single(request)
    fmt = (request.query_params.get("render_format") or "png").lower()
    if fmt not in ("png", "jpeg", "jpg"):
        raise InvalidInput(f"render_format must be png or jpeg, got {fmt!r}")
    render: Literal["png", "jpeg"] = "png" if fmt == "png" else "jpeg"
    # the engine decodes (limits first), estimates and draws on the worker that holds the decoded image
    result, _ = await _submit(request, data, parsed, render=render)
    assert result.rendered is not None
    return Response(result.rendered, media_type=f"image/{render}")


def _cards(request: Request) -> list[Any]:
    cards: list[Any] = request.app.state.cards
    return cards


def _infos(request: Request) -> dict[str, Any]:
    """Served model name → the engine's ``ModelInfo`` (``None`` until its first worker is ready)."""
    engine = request.app.state.engine
    if hasattr(engine, "infos"):
        infos: dict[str, Any] = engine.infos()
        return infos
    cards = _cards(request)
    return {cards[0].name: engine.info} if cards else {}


@router.get("/models", response_model=ModelsResponse, summary="The served model cards")
async def models(request: Request) -> Any:
    """Every model this server serves (the first is the default a request gets when it names none)."""
    infos = _infos(request)
    first = next(iter(infos.values()), None)
    detector = None
    if first is not None and first.detector is not None:
        detector = {"name": first.detector, "trained": first.detector_trained}
    out = []
    for i, card in enumerate(_cards(request)):
        info = infos.get(card.name)
        out.append({
            "name": card.name,
            "default": i == 0,
            "description": card.description,
            "architecture": card.architecture,
            "input_size": list(card.input_size),
            "heatmap_size": list(card.heatmap_size),
            "convention": card.convention,
            "flip_shift": card.flip_shift,
            "codec": card.codec,
            "blur_kernel": card.blur_kernel,
            "published_ap": card.published_ap,
            "published_ap_note": card.published_ap_note,
            "trained": bool(info.trained) if info is not None else False,
            "backend": info.backend if info is not None else "",
            "backend_note": info.backend_note if info is not None else "",
            "keypoint_schema": card.keypoints.name,
            "joints": list(card.joint_names),
            "skeleton": [list(p) for p in card.skeleton],
        })  # fmt: skip
    return {"models": out, "detector": detector}
