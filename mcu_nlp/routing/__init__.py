"""Curator rules, auto-coordination and urgency: pure functions over appeals and predictions."""

from mcu_nlp.routing.router import RoutingDecision, route
from mcu_nlp.routing.rules import RuleBook, RulesError, RuleSubject, load_rules, parse_rules_text
from mcu_nlp.routing.urgency import Urgency, UrgencyLexicon, load_lexicon

__all__ = ["RoutingDecision", "RuleBook", "RuleSubject", "RulesError", "Urgency",
           "UrgencyLexicon", "load_lexicon", "load_rules", "parse_rules_text", "route"]
