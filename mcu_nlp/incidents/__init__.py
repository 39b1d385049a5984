"""Merging near-duplicate appeals about the same problem into incidents."""

from mcu_nlp.incidents.merge import IncidentMerger, incident_pairs
from mcu_nlp.incidents.summary import Incident, summarize_incidents

__all__ = ["Incident", "IncidentMerger", "incident_pairs", "summarize_incidents"]
