"""Sentence embedders behind one protocol (:class:`SentenceEmbedder`)."""

from mcu_nlp.embeddings.base import SentenceEmbedder, l2_normalize
from mcu_nlp.embeddings.cache import EmbeddingCache
from mcu_nlp.embeddings.navec import NavecEmbedder
from mcu_nlp.embeddings.usem3 import Usem3Embedder

__all__ = ["EmbeddingCache", "NavecEmbedder", "SentenceEmbedder", "Usem3Embedder", "l2_normalize"]
