"""What an official answer says was done: outcome types of ``last_answer_text``.

Why a problem keeps coming back shows in the answers: «выполнены работы» followed by a new appeal
at the same place means the fix did not hold; «включено в адресную программу на 2022 год» means
it was put off; «не входит в компетенцию» means nobody took it. This module sorts answers into

========================  ==========================================================
``done``                  the problem is reported fixed («устранено», «выполнены работы»)
``partly_done``           some of it fixed, the rest put off («частично», done + planned)
``planned``               put off to a named date, year or programme (extracted)
``out_of_competence``     refused as not the answering body's (or the owners') business
``redirected``            sent on to another body
``no_funding``            refused or put off for lack of money
``contractor_fault``      a contractor's or developer's defect: claims, guarantee work
``court_or_inspection``   court, housing inspection (ГЖИ), order, administrative case
``wrong_place``           the place or object does not match or was not found
``no_access``             no access to a flat, attic or basement
``not_confirmed``         inspected and nothing wrong found («не подтвердилась»)
``other``                 explanations of rules, questions, anything else
========================  ==========================================================

``not_confirmed`` is not in the issue's list; it is kept apart from ``other`` because it is the
second most common answer and says something about the appeal («the problem was not there»).

Weak supervision: each type has labelling functions, patterns on the normalized, lower-cased
answer, run by RE2 (linear in the text's length, whatever the input). They are evaluated per
sentence; a sentence in the future tense («будут выполнены»), a conditional («в случае
невыполнения … будет направлена в ГЖИ») or a negation («не устранено») does not count as
done, and a conditional threat does not count as court action. The fired types are combined by
a fixed precedence (:data:`PRECEDENCE`): a fix beats everything, and explicit obstacles
(no access, a contractor's defect, enforcement) beat a bare promise.

No learned model is used. A logistic regression on TF-IDF word 1-2-grams, trained on the weak
labels of the 19 k distinct answers outside Q1 2021 and used where the rules say ``other``,
left the accuracy on the hand-checked set (``tests/data/answer_outcomes.csv``, full answers)
at 0.956 and lowered it on the 60 fresh answers (0.983 → 0.967); alone it reached 0.839.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from mcu_nlp.text.normalize import normalize_text

__all__ = [
    "FIXED_OUTCOMES",
    "MAX_ANSWER_CHARS",
    "OUTCOME_LABELS_RU",
    "OUTCOME_TYPES",
    "PRECEDENCE",
    "AnswerOutcome",
    "classify_answer",
    "classify_answers",
    "extract_plan",
    "outcome_mix",
    "outcome_scores",
    "outcome_types",
]

OUTCOME_TYPES: tuple[str, ...] = (
    "done", "partly_done", "planned", "out_of_competence", "redirected", "no_funding",
    "contractor_fault", "court_or_inspection", "wrong_place", "no_access", "not_confirmed",
    "other",
)
"""Every outcome type, in the order reports list them."""

OUTCOME_LABELS_RU: dict[str, str] = {
    "done": "выполнено",
    "partly_done": "выполнено частично",
    "planned": "запланировано",
    "out_of_competence": "не в компетенции",
    "redirected": "перенаправлено",
    "no_funding": "нет финансирования",
    "contractor_fault": "вина подрядчика",
    "court_or_inspection": "суд / инспекция / предписание",
    "wrong_place": "не то место",
    "no_access": "нет доступа",
    "not_confirmed": "не подтвердилось",
    "other": "прочее",
}
"""Russian names of the outcome types, for cards and reports."""

FIXED_OUTCOMES = frozenset({"done", "partly_done"})
"""Outcomes that say the problem was (at least partly) fixed: a repeat after one did not hold."""

PRECEDENCE: tuple[str, ...] = (
    "partly_done", "done", "no_access", "contractor_fault", "court_or_inspection", "planned",
    "no_funding", "wrong_place", "redirected", "out_of_competence", "not_confirmed",
)
"""Which fired type wins: the first one in this order (``other`` when none fired)."""

MAX_ANSWER_CHARS = 6_000
"""Answers are cut to this length before anything else (the portal's longest is 3,000)."""

_MAX_SENTENCES = 120
_EVIDENCE_CHARS = 240

# A word start: RE2 has no Unicode \b, so "not a letter or digit before" is spelled out.
_B = r"(?:^|[^а-яa-z0-9])"
# A word end.
_E = r"(?:[^а-яa-z0-9]|$)"

# Past participles that by themselves say a fix was made, short forms («устранена»).
_FIX_STEMS = (
    "устранен|удален|убран|вывезен|восстановлен|отремонтирован|заменен|демонтирован|очищен|"
    "закрашен|окрашен|покрашен|отрегулирован|ликвидирован|засыпан|заделан|вымыт|помыт|отмыт|"
    "посыпан|исправлен|заварен|укреплен|прочищен|расчищен|подметен|смонтирован|эвакуирован|"
    "спилен|срезан|утеплен|загерметизирован|починен|подключен|налажен|закреплен|скошен|вырублен|опорожнен|откачан|промыт|продезинфицирован|"
    "сколот|сброшен|обрезан|перекрашен|переустановлен|снят|сбит|заклеен|"
    "зашпаклеван|оштукатурен|покрыт|залит|застеклен|вставлен|отключен|"
    "обеспечен вывоз|освобожден|обработан|решен|исполнен|закрыт|отчищен|нормализован|"
    "переставлен|почищен|пролит|зачищен"
)
# Participles of doing in general: a fix only with a work noun in the same sentence.
_DO_STEMS = "выполнен|произведен|проведен|осуществлен|перенесен|вывешен|организован"
# What gets installed («урна установлена», «установлен доводчик»), unlike «сроки установлены».
_FIXTURES = (
    "(?:урн|скамейк|лавк|ламп|светильник|плафон|доводчик|замок|замк|поручн|ограждени|знак|"
    "решетк|стекл|табличк|пружин|кнопк|датчик|контейнер|бак|столбик|указател|камер|пандус|"
    "зеркал|ящик|светодиодн|полусфер|неровност|песок|крышк|нов[аоы]|дополнительн|исправн|"
    "временн)"
)
_END = "(?:[аоы]|ы и|о и|а и)?" + _E

ATOMS: dict[str, str] = {
    # --- what was done ------------------------------------------------------------------
    "fix_verb": _B + "(?:" + _FIX_STEMS + ")" + _END,
    "fix_active": _B + (
        "(?:заменили|устранили|убрали|удалили|выполнили|отремонтировали|восстановили|"
        "установили|покрасили|вывезли|очистили|починили|закрасили|демонтировали|произвели|"
        "провели|отрегулировали|подключили|вымыли|помыли|заварили|закрепили|"
        "(?:выполнил|произвел|провел|устранил|восстановил|заменил|отремонтировал)[аои]?)"
        + _E + "|" + _B + "закрыт[аоы]? на (?:[а-я0-9]+ ){0,2}(?:замок|замк|ключ)"),
    "do_verb": _B + "(?:" + _DO_STEMS + ")" + _END,
    # «урны установлены», «установлены новые лампы»: not «сроки установлены постановлением».
    "installed": _B + (
        "(?:" + _FIXTURES + "[а-я]* (?:[^ .]+[.]? ){0,12}(?:установлен|смонтирован|заменен|"
        "завезен)|(?:установлен|смонтирован|заменен)[аоы]? (?:[а-я]+ )?" + _FIXTURES + ")"),
    "work_noun": _B + (
        "(?:работ|мероприяти|уборк|ремонт|замен|очистк|покраск|окраск|вывоз|демонтаж|"
        "монтаж|чистк|посыпк|обработк|регулировк|восстановлени|удалени|мойк|промывк|прочистк|"
        "герметизац|наладк|закраск|ликвидац|устранени|дезинфекц|дератизац|дезинсекц|"
        "подсыпк|сброс|вырубк|обрезк|кронировани|урн|скамейк|контейнер|ламп|светильник|"
        "доводчик|замок|замк|поручн|поручен|ограждени|знак|решетк|стекл|двер|табличк|"
        "пружин|кнопк|плафон|датчик|покос|скос|откачк|сколк|снегоочистк|осмотр кровли "
        "и сброс|мероприяти[яй] по (?:устранени|уборк|очистк|ремонт|замен))"),
    "in_order": _B + (
        "приведен[аоы]? в (?:надлежащ|порядок|исправн|удовлетворит|нормативн|соответстви|"
        "рабоч|проектн|первоначальн)"),
    "works_again": _B + (
        "(?:освещение|отопление|водоснабжение|электроснабжение|лифт|домофон|подача|"
        "теплоснабжение|горячее водоснабжение|холодное водоснабжение|газоснабжение) "
        "(?:[а-я]+ )?(?:было |был |была )?(?:восстановлен|включен|запущен|возобновлен|"
        "подключен)"),
    "negation": _B + (
        "(?:не|нельзя|невозможно)(?: (?:был[аои]?|будут|будет|могут быть|может быть|"
        "удалось|представляется возможным|возможно|в полном объеме))? (?:" + _FIX_STEMS +
        "|" + _DO_STEMS + ")" + _END + "|" + _B + "не (?:выполнил|устранил|убрал|удалил|"
        "провел|произвел|установил|приступил)"),
    # --- partly -------------------------------------------------------------------------
    "partly": _B + (
        "(?:частичн(?:о|ая|ый|ое|ые) (?:выполнен|устранен|удален|убран|восстановлен|"
        "отремонтирован|заменен|очищен|закрашен|проведен|произведен|ремонт|замен|"
        "восстановлени|устранени|покраск|окраск)|(?:выполнен|устранен|удален|убран|"
        "восстановлен|отремонтирован|заменен|очищен|закрашен|проведен|произведен)[аоы]? "
        "частично|временн(?:ые|ая|ое|ым|ый) (?:мер|ремонт|устранени|заделк)|временно "
        "(?:устранен|восстановлен|заделан|закрыт)|в полном объеме (?:не|будут|будет)|"
        "не в полном объеме|(?:остальн|оставш)[а-я]* (?:работ|замечани|част|объем)|"
        "на (?:период|время) до (?:проведени|выполнени|начала)|аварийност[а-я]* "
        "(?:[а-я]+ ){0,3}устранен)"),
    # --- planned ------------------------------------------------------------------------
    "will_do": _B + (
        "(?:будут|будет) (?:[а-я]+ )?(?:выполнен|проведен|произведен|устранен|"
        "восстановлен|отремонтирован|заменен|удален|установлен|закрашен|окрашен|"
        "демонтирован|очищен|осуществлен|организован|учтен|убран|вывезен|приведен|завезен|"
        "окошен|покрашен|отремонтирован|начат|завершен|проложен|рассмотрен[аоы]? "
        "(?:при формировании|возможность включени|вопрос о включени)|включен)|"
        "(?:устранит|выполнит|проведет|произведет|восстановит|заменит|отремонтирует|"
        "установит|демонтирует|уберет|очистит|закрасит|устранят|выполнят|проведут|"
        "произведут|восстановят|заменят|отремонтируют|установят|демонтируют|уберут)" + _E +
        "|" + _B + "(?:начнут|начинают|приступят|приступает|приступают) (?:[а-я]+ )?"
        "(?:ремонтн|работ|к работ|к выполнени)"),
    "scheduled": _B + (
        "(?:запланирован|спланирован|планируется|планируются|намечен[аоы]?|"
        "предусмотрен[аоы]? (?:адресн|планом|программ|проект|в (?:адресн|план|программ))|"
        "(?:включен|учтен|внесен|вошл|включена|включены|включено|учтена|учтены|учтено|"
        "внесена|внесены|внесено|вошла|вошли|вошло|заявлен[аоы]?|предложен[аоы]?) (?:в )?"
        "(?:[а-я]+ )?(?:адресн|план|программ|перечень|проект|титульн|график|сводн))"),
    "due_date": _B + (
        "(?:в (?:срок|сроки) (?:до|не позднее)|не позднее [0-9]|до [0-9]{1,2}[.][0-9]{2}[.]"
        "(?:20)?2[0-9]|до (?:конца|окончания) 20[2-3][0-9]|в (?:весенне|летн|агротехническ|"
        "благоприятн|теплый|теплое)[а-я]* (?:-[а-я]+ )?(?:период|сезон|месячник|время)|"
        "в (?:[ivx]+|[0-9]|первом|втором|третьем|четвертом) (?:квартал|полугоди)|"
        "в 20[2-3][0-9] (?:году|г)|на 20[2-3][0-9] (?:год|г))"),
    "monitoring_plan": _B + "включен[аоы]? в план мониторинга",
    # --- refusals and obstacles ---------------------------------------------------------
    "not_ours": _B + (
        "(?:не (?:входит|входят|относится|относятся|является|являются|находится|"
        "находятся|включен[аоы]?) (?:в |к )?(?:компетенци|зон[уы] (?:ответственности|"
        "обслуживани)|полномочи|ведени|рамки (?:ответственности|полномочий|компетенции)|"
        "обязанност|перечень (?:работ|услуг|обязательн|общего)|минимальн|состав общего "
        "имущества|обслуживани|балансе|общему имуществу|общим имуществом|собственностью|"
        "балансодержател|предмет|объект[а-я]* благоустройства|территори[яи] "
        "(?:[а-я]+ )?обслуживан)|(?:вне|за пределами) (?:компетенци|полномочи|зоны "
        "ответственности|границ (?:обслуживани|ответственности))|выходит за (?:рамки|"
        "пределы)|не (?:вправе|уполномочен|наделен[аоы]? полномочи|обслуживает|"
        "обслуживается|обслуживаются|может нести ответственность|числится|числятся)|на "
        "(?:обслуживании|балансе|содержании) (?:[а-я]+ ){0,2}не (?:находится|находятся|"
        "числится|числятся)|нецелев[а-я]* "
        "(?:использовани|расходовани)|не находится на "
        "(?:балансе|обслуживании|содержании))"),
    "owners_decide": _B + (
        "(?:(?:общ[а-я]* собрани[а-я]* собственников|собственниками) "
        "(?:[а-я]+ ){0,8}не рассматривал|собственник[а-я]* (?:помещений )?(?:[а-я]+ ){0,4}"
        "(?:могут|вправе) (?:[а-я]+ ){0,2}(?:изъявить|принять решение|созвать)|"
        "решени[ея]м? (?:общего )?собрания собственников|собственники (?:помещений )?"
        "(?:[а-я]+ )?(?:несут|должны|вправе|обязаны)|к компетенции общего собрания|"
        "за счет (?:средств )?собственник|частн[а-я]* собственност|является (?:частной )?"
        "собственностью|в собственности (?:физическ|юридическ|третьих|частн))"),
    "other_body": _B + (
        "(?:находится|находятся|относится|относятся|отнесен[аоы]?) (?:в |к )(?:компетенци|"
        "ведени|полномочи|зоне ответственности)"),
    "sent_on": _B + (
        "(?:переадресован|перенаправлен|передан[аоы]? (?:в|для|на рассмотрение|по "
        "принадлежности|на исполнение)|направлен[аоы]? (?:для рассмотрения|на рассмотрение|"
        "по (?:принадлежности|компетенции|подведомственности)|для принятия мер|для "
        "устранения|для исполнения|в (?:адрес )?(?:[а-я]+ )?(?:комитет|администрац|"
        "управлени|пао|оао|гуп|гку|гбу|гуп|ресурсоснабжающ|собственник|владельц|"
        "застройщик|фонд|балансодержател|дирекци|ук|тсж|жск|жкс|ооо|ао|спб|"
        "обслуживающ|управляющ|эксплуатирующ|ленэнерго|россети|ростелеком|водоканал|"
        "теплосет|мвд|полици|отдел|умвд|гибдд|администраци)))"),
    "advise_contact": _B + (
        "(?:рекомендуем|следует|необходимо|вам (?:необходимо|следует)|вы можете|можете|"
        "просим|предлагаем) (?:[а-я]+ )?обратиться"),
    "owner_told": _B + (
        "(?:(?:собственник|владельц|арендатор|балансодержател|пользовател|управляющ|"
        "застройщик|правообладател|тсж|жск|ук)[а-я]* (?:[а-я0-9-]+ ){0,4}"
        "(?:направлен|выдан|вручен)[аоы]? (?:[а-я]+ )?(?:уведомлени|письм|требовани|"
        "обращени|запрос|информаци)|(?:направлен|выдан|вручен)[аоы]? (?:[а-я]+ )?"
        "(?:уведомлени|письм|требовани|обращени|запрос)[а-я]* (?:[а-я]+ ){0,3}"
        "(?:собственник|владельц|арендатор|балансодержател|правообладател|застройщик|"
        "управляющ|тсж|жск))"),
    # A notice to whoever owns the place: the owner is to fix it.
    "notice_sent": _B + (
        "(?:направлен|отправлен|выдан|вручен)[аоы]? (?:[а-я]+ )?(?:письменн[а-я]* )?"
        "(?:уведомлени|письм|требовани|обращени|предложени)"),
    "owner_word": _B + (
        "(?:собственник|владел|владельц|арендатор|балансодержател|правообладател|обществ|"
        "юридическ[а-я]* лиц|тсж|жск|застройщик|пользовател[а-я]* (?:участка|помещени)|"
        "управляющ[а-я]* (?:компани|организаци)|специализированн[а-я]* организаци)"),
    "not_included": _B + (
        "не (?:был[аои]? )?(?:включен|внесен|учтен|вошл|вошел|предусмотрен)"),
    "programme_word": _B + "(?:программ|план|перечень|перечн|титульн)",
    # Work that fixes nothing: papers, inspections, enforcement («мероприятия по понуждению»).
    "paperwork": _B + (
        "(?:разработк[а-я]* (?:[а-я]+ )?(?:проект|документаци)|проектно-сметн|работ[а-я]* по "
        "(?:обследовани|осмотр|проверк|замер|разработк)|понуждени)"),
    "money": _B + (
        "(?:(?:отсутстви[ея]|недостаточн[а-я]*|нехватк[а-я]*|ограниченн[а-я]*|ограничен[а-я]*|"
        "не выделен[а-я]*|не предусмотрен[а-я]*|не доведен[а-я]*|дефицит[а-я]*) "
        "(?:[а-я]+ )?(?:финансировани|денежн[а-я]* средств|бюджетн[а-я]* (?:средств|"
        "ассигновани)|средств|лимит)|(?:финансировани[ея]|денежные средства) (?:[а-я]+ )?"
        "(?:не (?:предусмотрен|выделен|запланирован|заложен)|отсутству)|"
        "лимит[а-я]* (?:бюджетн[а-я]* )?(?:финансировани|"
        "средств)[а-я]* (?:исчерпан|израсходован|не предусмотрен|ограничен))"),
    "contractor": _B + (
        "(?:(?:претензи[яиюей][а-я]*|рекламаци[а-я]*|штрафн[а-я]* санкци[а-я]*) "
        "(?:[а-я]+ )?(?:к (?:подрядн|подрядчик|застройщик|исполнител|организаци)|в адрес|"
        "направлен|выставлен|предъявлен|подрядн|подрядчик|застройщик)|(?:направлен|"
        "выставлен|предъявлен)[аоы]? (?:[а-я]+ )?(?:претензи|рекламаци|штрафн)|"
        "гарантийн[а-я]* (?:обязательств(?:ам|ами|ах|а)?" + _E + "|обслуживани|ремонт|случа|"
        "работ)|(?:в рамках|по) гаранти[ияи]|подрядн[а-я]* организаци[а-я]* "
        "(?:[а-я]+ ){0,2}(?:не выполнил|"
        "не исполнил|не устранил|ненадлежащ|нарушил|некачественн)|подрядчик[а-я]* "
        "(?:[а-я]+ ){0,2}(?:не выполнил|не исполнил|не устранил|ненадлежащ|нарушил|"
        "некачественн)|(?:ненадлежащ|некачественн)[а-я]* (?:выполнени|исполнени)[а-я]* "
        "(?:работ|обязательств|контракт)[а-я]* подрядн)"),
    # Enforcement: a court, an inspection or an order, acted upon (not only cited).
    "enforce_strong": _B + (
        "(?:в суд|(?:районн|арбитражн|мирово|апелляционн)[а-я]* суд|"
        "исков[а-я]* (?:заявлени|требовани)|"
        "судебн[а-я]* (?:порядк|заседани|разбирательств|приказ|пристав)|мировому судье|"
        "привлечен[аоы]? к административн|административн[а-я]* штраф[а-я]* (?:в размере|"
        "[0-9])|назначени[а-я]* (?:административного )?наказани|(?:составлен|оформлен)[аоы]? "
        "(?:[а-я]+ )?протокол|протокол[а-я]* (?:[а-я]+ )?(?:составлен|оформлен)|"
        "(?:возбужден|рассмотрен)[аоы]? (?:[а-я]+ ){0,2}(?:дел[оа]|расследовани|"
        "производств)|дел[оа] (?:[а-я]+ ){0,3}"
        "(?:возбужден|рассмотрен)|мер[а-я]* административного (?:воздействия|реагирования) "
        "(?:приняты|применены))"),
    "enforce_doc": _B + (
        "(?:предписани|протокол[а-я]* об административн|уведомлени[ея] о (?:явке|"
        "необходимости явки)|постановлени[ея] (?:по делу|о назначении)|"
        "материал[а-я]* (?:проверки|для привлечения))"),
    "enforce_body": _B + (
        "(?:гжи|государственн[а-я]* жилищн[а-я]* инспекци|жилищн[а-я]* инспекци|оати|"
        "прокуратур|роспотребнадзор|госадмтехнадзор|ггиэ|административн[а-я]* комисси|"
        "мчс|госпожнадзор|кгиоп|ккн|комитет по контролю)"),
    "enforce_act": _B + (
        "(?:направлен|выдан|вынесен|вручен|составлен|подготовлен|передан|предъявлен|подан|"
        "оформлен|выписан)[аоы]?" + _E + "|" + _B + "(?:будет|будут) (?:[а-я]+ )?"
        "(?:выдан|направлен|вынесен|составлен|предъявлен|подан)"),
    # Modal and generic legal statements («… может быть устранено», «в соответствии со ст. 4.5
    # КоАП РФ постановление … будет вынесено …») say what may happen, not what did.
    "hedge": _B + (
        "(?:может|могут|вправе|можете|имеет право|имеют право|возможн[оаы]|"
        "(?:в соответствии со?|согласно) (?:ст[.]|стать[а-я]*|ч[.]|част[а-я]*) ?[0-9.]+ "
        "(?:[а-я]+ ){0,2}(?:коап|кодекс)|предусмотрен[а-я]* (?:кодекс|закон))"),
    # --- wrong place, no access, not confirmed ------------------------------------------
    "place_word": _B + (
        "(?:координат|метк|адрес|мест[оаеу]|местоположени|выбранн|указанн|объект|"
        "категори|рубрик|тематик|классификатор|фотографи|фотоматериал|фото)"),
    "mismatch": _B + "не соответству",
    "not_found_here": _B + (
        "(?:в указанном|по указанному|на указанном)(?: вами| в (?:вашем )?(?:сообщении|"
        "обращении))? (?:месте|адресу|участке)"),
    "absent": _B + "(?:отсутству|не обнаружен|не выявлен|не найден|не существует)",
    "cannot_locate": _B + (
        "(?:(?:не удалось|невозможно|не представляется возможным) (?:[а-я]+ )?"
        "(?:установить|определить|идентифицировать|найти|обнаружить)(?: [а-я]+)? (?:мест|"
        "адрес|объект|точн|местоположени|указанн)|(?:адрес|место)[а-я]* (?:указан[аоы]? )?"
        "(?:некорректн|неверн|неточн|ошибочн)|уточнить (?:адрес|место|местоположени))"),
    "access": _B + (
        "(?:(?:нет|отсутстви[ея]|отсутствует|не (?:предоставлен|обеспечен)[аоы]?) "
        "(?:[а-я]+ )?доступ[а-я]*|доступ[а-я]* (?:[а-я]+ ){0,6}не (?:предоставлен|"
        "обеспечен|был|предоставил|предоставили|обеспечил|обеспечили|получен|удалось)|"
        "(?:отказал[аиос]*|не предоставил[аи]?|не обеспечил[аи]?) (?:[а-я]+ )?(?:в )?"
        "(?:предоставлени[а-я]* )?доступ|(?:дверь|двери) (?:[а-я]+ )?не (?:открыл|"
        "открыли|открыт)|(?:попасть|проникнуть) в (?:квартир|помещени|подвал|чердак))"),
    "not_there": _B + (
        "(?:не (?:подтвердил|подтвержден|подтверждает|подтверждаются|подтверждается|нашл[аи] "
        "(?:своего )?подтверждени|нашла подтверждени|выявлен|обнаружен|зафиксирован|"
        "наблюдается|наблюдаются)|(?:находится|находятся|содержится|содержатся) "
        "(?:в )?(?:удовлетворительн|надлежащ|исправн|рабоч|технически исправн|нормативн|"
        "чист)|в (?:удовлетворительн|надлежащ|исправн|рабоч|технически исправн|чист)[а-я]* "
        "(?:санитарн[а-я]* |техническ[а-я]* |эксплуатационн[а-я]* )?"
        "состоянии|"
        "(?:соответству[а-я]*|отвечает) (?:[а-я]+ ){0,4}(?:норм|нормативн|требовани|гост|"
        "санпин)|не (?:является|являются) (?:[а-я]+ )?(?:мусором|нарушением|аварийн)|"
        "(?:исправн[аоы]?|работает|"
        "работают|функционирует|функционируют)" + _E + "|отсутству(?:ет|ют)" + _E + ")"),
    # A condition that can be gone («наледь отсутствует»: not confirmed; a missing object,
    # «ТС в указанном месте отсутствует», is a wrong place).
    "condition_noun": _B + (
        "(?:мусор|снег|наледь|наледи|сосульк|надпис|граффити|реклам|объявлени|протечк|течь|"
        "нарушени|дефект|неисправност|проблем|посторонн|засор|подтоплени|лужи|луж|скоплени|"
        "запах|повреждени|задолженност|вещи|замечани)"),
    # «аварийность отсутствует», «угрозы нет»: said in every kind of answer.
    "no_danger": _B + (
        "(?:(?:аварийн|угроз|опасност)[а-я]* (?:[а-я]+ ){0,4}(?:отсутству|нет|не "
        "(?:выявлен|обнаружен|представля|несет|носит))|(?:отсутству|нет) (?:[а-я]+ )?"
        "(?:аварийн|угроз))"),
    # Past work of earlier years («последний ремонт проводился в 2016 году»).
    "history": _B + (
        "(?:последн[а-я]* (?:[а-я]+ ){0,3}ремонт|ранее|проводил(?:ся|ась|ось|ись)|"
        "производил(?:ся|ась|ось|ись)|(?:проведен|выполнен|произведен|установлен)[а-я]* "
        "(?:[а-я]+ )?в 20[0-9]{2}|в 20[0-9]{2}(?:-20[0-9]{2})? (?:год[уа]?|гг?[.]?) "
        "(?:[а-я0-9]+ ){0,5}(?:был|были|проводил|производил|выполнял|выполнен|произведен|"
        "проведен|установлен))"),
    "guarantee_term": _B + "срок[а-я]* (?:[а-я]+ )?гарантийн",
    # Planning of capital repairs years ahead says nothing about today's fix.
    "capital_plan": _B + (
        "(?:капитальн[а-я]* ремонт|региональн[а-я]* (?:программ|оператор)|фонд[а-я]* "
        "капитального)"),
    "law_citation": _B + (
        "(?:(?:согласно|в соответствии со?) (?:ст[.]|стать[а-я]*|ч[.]|част[а-я]*|п[.]|"
        "пп[.]|пункт[а-я]*|подпункт[а-я]*) ?[0-9]|стать[а-я]* [0-9]+ (?:[а-я]+ )?(?:кодекс|"
        "закон|жк|гк))"),
    "unauthorized": _B + "(?:самовольн|незаконн|неизвестн|без разрешени|без согласовани)",
    "records": _B + "(?:кадастров|сведени|информаци|данны[хе]|учет)",
    "needs_time": _B + "(?:требуется|необходим|понадобится) (?:[а-я]+ )?срок",
    # --- sentence modifiers -------------------------------------------------------------
    "on_control": _B + (
        "(?:на контроле|на контроль|для проверки качества|ответ будет|информаци[яю] "
        "(?:[а-я]+ ){0,3}будет направлена|окончательный ответ|будет дан|"
        "промежуточный ответ)"),
    "rule_text": _B + (
        "(?:регламент|правил[а-я]* (?:благоустройства|и норм)|гост|снип|санпин|"
        "постановлени[а-я]* правительства|распоряжени[а-я]* (?:комитета|гати|жилищного)|"
        "осуществляется|осуществляются|выполняются|выполняется|производится|производятся|"
        "проводится|проводятся|должн[аоы]? (?:выполняться|производиться|осуществляться|"
        "проводиться))"),
    "future": _B + (
        "(?:будут|будет|буду|планиру|запланирован|предполага|в срок до|не позднее|"
        "по мере|при наступлении|необходимо (?:выполнить|провести|произвести|устранить)|"
        "требуется)"),
    "conditional": _B + (
        "(?:в случае|при (?:невыполнени|неисполнени|неустранени|повторн|выявлени|"
        "обнаружени|возникновени|наличии|необходимости|условии)|если|во избежание)"),
}

_NOT_DONE = frozenset({"negation", "future", "conditional", "hedge", "history"})
_NOT_PLANNED = frozenset({"on_control", "conditional"})
_NOT_ENFORCED = frozenset({"conditional", "hedge", "on_control"})
_NOT_CONFIRMED = frozenset({"no_danger", "conditional", "future", "will_do"})
_CONDITIONAL = frozenset({"conditional"})

LABELLING_FUNCTIONS: tuple[tuple[str, str, frozenset[str], frozenset[str]], ...] = (
    # (name, outcome type, atoms a sentence must hold, atoms that veto the sentence)
    ("fix_verb", "done", frozenset({"fix_verb"}), _NOT_DONE),
    ("fix_active", "done", frozenset({"fix_active"}), _NOT_DONE),
    ("did_work", "done", frozenset({"do_verb", "work_noun"}), _NOT_DONE | {"paperwork"}),
    ("installed", "done", frozenset({"installed"}), _NOT_DONE | {"unauthorized"}),
    ("put_in_order", "done", frozenset({"in_order"}), _NOT_DONE),
    ("works_again", "done", frozenset({"works_again"}), _NOT_DONE),
    ("partly", "partly_done", frozenset({"partly"}), _CONDITIONAL),
    ("will_do", "planned", frozenset({"will_do"}), _NOT_PLANNED),
    ("scheduled", "planned", frozenset({"scheduled"}), frozenset({"on_control",
                                                                  "not_included"})),
    # («для устранения проблемы требуется срок до …» is the time a procedure takes)
    # a date with work, not in a rule's citation («в агротехнический период … согласно ГОСТ»)
    # (nor a deadline given to an owner told to fix it: that is «redirected»)
    ("due_date", "planned", frozenset({"due_date", "work_noun"}),
     _NOT_PLANNED | {"rule_text", "owner_told", "sent_on", "notice_sent", "needs_time"}),
    ("monitoring_plan", "planned", frozenset({"monitoring_plan"}), frozenset()),
    ("not_ours", "out_of_competence", frozenset({"not_ours"}), _CONDITIONAL),
    ("owners_decide", "out_of_competence", frozenset({"owners_decide"}),
     _CONDITIONAL | {"law_citation"}),
    ("other_body", "out_of_competence", frozenset({"other_body"}), _CONDITIONAL),
    ("sent_on", "redirected", frozenset({"sent_on"}), _CONDITIONAL | {"future"}),
    ("owner_told", "redirected", frozenset({"owner_told"}), _CONDITIONAL),
    ("owner_notice", "redirected", frozenset({"notice_sent", "owner_word"}), _CONDITIONAL),
    ("advise_contact", "out_of_competence", frozenset({"advise_contact"}), _CONDITIONAL),
    ("money", "no_funding", frozenset({"money"}), _CONDITIONAL),
    ("not_in_programme", "no_funding", frozenset({"not_included", "programme_word"}),
     _CONDITIONAL),
    ("contractor", "contractor_fault", frozenset({"contractor"}),
     _CONDITIONAL | {"guarantee_term"}),
    ("court_or_fine", "court_or_inspection", frozenset({"enforce_strong"}), _NOT_ENFORCED),
    ("order_issued", "court_or_inspection", frozenset({"enforce_act", "enforce_doc"}),
     _NOT_ENFORCED),
    ("inspection_told", "court_or_inspection", frozenset({"enforce_act", "enforce_body"}),
     _NOT_ENFORCED),
    ("place_mismatch", "wrong_place", frozenset({"place_word", "mismatch"}), _CONDITIONAL),
    ("object_not_found", "wrong_place", frozenset({"not_found_here", "absent"}),
     frozenset({"conditional", "condition_noun", "programme_word", "records"})),
    ("cannot_locate", "wrong_place", frozenset({"cannot_locate"}), _CONDITIONAL),
    ("no_access", "no_access", frozenset({"access"}), _CONDITIONAL),
    ("not_there", "not_confirmed", frozenset({"not_there"}), _NOT_CONFIRMED),
    ("gone", "not_confirmed", frozenset({"condition_noun", "absent"}), _NOT_CONFIRMED),
)
"""The labelling functions: each fires on a sentence that holds all its atoms and none of its
vetoes (a done verb in a future, conditional, modal, negated or historical sentence; a promise
that only says the appeal stays on control; a court cited in a conditional or a law's text)."""

WEAK_FUNCTIONS = frozenset({"advise_contact"})
"""Functions that count only when no other function fired («вы можете обратиться в …» is
advice added to many answers; alone it means «not ours, ask them»)."""

_LINE_END_CHARS = ("!", "?", ";")


@dataclass(frozen=True, slots=True)
class AnswerOutcome:
    """What one official answer says was done.

    Attributes:
        type: The outcome type (one of :data:`OUTCOME_TYPES`).
        flags: Every type whose labelling functions fired, in :data:`PRECEDENCE` order
            (``type`` is the first; empty for ``other``).
        planned_year: The year a planned fix is due («на 2022 год», «в срок до 30.04.2021»),
            when the answer plans one and names it.
        programme: The plan or programme named («адресная программа текущего ремонта»,
            «план текущего ремонта», «план мониторинга»), lower-case.
        evidence: The sentence that decided the type (at most 240 characters).
        functions: The labelling functions that fired (their names).
    """

    type: str
    flags: tuple[str, ...] = ()
    planned_year: int | None = None
    programme: str | None = None
    evidence: str | None = None
    functions: tuple[str, ...] = ()

    @property
    def label_ru(self) -> str:
        """The type in Russian."""
        return OUTCOME_LABELS_RU[self.type]

    @property
    def fixed(self) -> bool:
        """Whether the answer says the problem was (at least partly) fixed."""
        return self.type in FIXED_OUTCOMES

    @property
    def plan(self) -> tuple[int | None, str | None]:
        """``(planned_year, programme)``."""
        return self.planned_year, self.programme


@lru_cache(maxsize=1)
def _atom_set() -> tuple[Any, tuple[str, ...]]:
    """All atoms in one RE2 set: one linear pass tells which atoms occur in a sentence."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 192 << 20  # the DFA cache: smaller budgets thrash (5x slower on 60 k)
    atoms = re2.Set.SearchSet(options)
    names = tuple(ATOMS)
    for name in names:
        atoms.Add(ATOMS[name])
    atoms.Compile()
    return atoms, names


def _prepare(text: object) -> str:
    """The answer as normalized text (case kept), cut to :data:`MAX_ANSWER_CHARS`."""
    if text is None:
        return ""
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text[: MAX_ANSWER_CHARS * 4]).decode("utf-8", errors="replace")
    if isinstance(text, float) and math.isnan(text):
        return ""
    if not isinstance(text, str):
        return ""
    text = text[: MAX_ANSWER_CHARS * 2]  # HTML is stripped below; keep enough for it
    return normalize_text(text)[:MAX_ANSWER_CHARS]


_ABBREVIATIONS = frozenset({
    "ул", "д", "п", "пр", "кв", "г", "т", "к", "лит", "корп", "пер", "наб", "пл", "ст", "ч",
    "т.к", "т.е", "т.ч", "им", "мо", "вмо", "о", "в.о", "п.с", "гг", "г.г", "руб", "тыс", "см",
    "л", "просп", "б-р", "ш", "стр", "литер", "пом", "эт", "тел", "спб", "рф", "no", "пп",
    "прим", "ред", "адм", "мин", "пгт", "пос", "лк", "л/к", "п/п", "бул", "дер", "мкр", "оф",
    "туп", "обл", "р-н", "пр-т", "пр-кт", "наб.р", "кор", "лит.а", "ген", "акад", "арх", "св",
    "пар", "под", "этаж", "ж.д", "ж/д", "вл", "сооруж", "соор",
})
_SENTENCE_END_CHARS = ".!?:;"


def _lines(text: str) -> list[str]:
    """Lines of the answer, hard-wrapped lines («в ответ», new line, «на Ваше») joined back."""
    lines: list[str] = []
    # An ellipsis (as in excerpts «… ») always ends a sentence, even before a small letter.
    text = text.replace("...", ".\n").replace("\u2026", ".\n")
    # str.replace runs in C; str.translate with a dict goes character by character.
    for end in _LINE_END_CHARS:
        text = text.replace(end, "\n")
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        if lines and lines[-1][-1:] not in _SENTENCE_END_CHARS and line[:1].islower():
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
    return lines


def _sentences(text: str) -> list[str]:
    """Lower-case sentences; «ул. Ленина», «д. 5» and «27.05.2021» keep their dots inside.

    A ". " ends a sentence only before a capital letter (or a quote, digit-free) and not after
    an abbreviation; the text keeps its case until it is split.
    """
    sentences: list[str] = []
    for line in _lines(text):
        glue = False
        for piece in line.split(". "):
            piece = piece.strip(" .")
            if not piece:
                continue
            starts_sentence = piece[:1].isupper() or piece[:1] in "«\"("
            if sentences and (glue or not starts_sentence) and not _new_line(sentences, piece):
                sentences[-1] = f"{sentences[-1]}. {piece.lower()}"
            else:
                sentences.append(piece.lower())
            last = piece.rsplit(" ", 1)[-1].lower()
            for mark in ':,("«':  # «адресу:г.», «"ул.»
                last = last.rsplit(mark, 1)[-1]
            # An abbreviation or a one-letter word before ". " ends no sentence.
            glue = last in _ABBREVIATIONS or (len(last) <= 2 and last.isalpha())
            if len(sentences) >= _MAX_SENTENCES:
                return sentences
        sentences.append("")  # the line's end is a sentence end
    return [sentence for sentence in sentences if sentence]


def _new_line(sentences: list[str], piece: str) -> bool:
    return not sentences[-1]


def _unquoted(sentence: str) -> str:
    """The sentence without short quoted spans.

    Category names («Неубранный снег, требуется обработка …») and organisation names are not
    what the answer says.
    """
    count = sentence.count('"')
    if count < 2 or count % 2 or sentence.startswith('"'):
        return sentence  # unbalanced or the whole sentence quoted: keep it
    parts = sentence.split('"')
    kept = [part if i % 2 == 0 or len(part) > 160 else " " for i, part in enumerate(parts)]
    return '"'.join(kept)


def _atoms_by_sentence(sentences: Sequence[str]) -> list[frozenset[str]]:
    atoms, names = _atom_set()
    return [frozenset(names[i] for i in (atoms.Match(_unquoted(sentence)) or ()))
            for sentence in sentences]


_YEAR = re2.compile(r"(?:^|[^0-9])(20[2-3][0-9])(?:[^0-9]|$)")
_PROGRAMME = re2.compile(
    r"(?:^|[^а-я])((?:проект[а-я]* )?(?:адресн[а-я]* (?:программ|план|перечн)[а-я]*|"
    r"(?:перспективн|муниципальн|региональн|ведомственн|государственн|краткосрочн)[а-я]* "
    r"(?:программ|план)[а-я]*|план[а-я]* (?:текущего|капитального|работ|мониторинга|"
    r"благоустройства|ремонта|мероприятий)|программ[а-я]* (?:текущего|капитального|"
    r"благоустройства|ремонта|формирования|комфортн)|титульн[а-я]* спис[а-я]*|"
    r"весенн[а-я]* месячник[а-я]*|агротехническ[а-я]* период[а-я]*)"
    r"(?: [а-я]+){0,4})"
)
_PROGRAMME_STOP = (" на ", " в ", " и ", " по ", " с ", " до ", " не ", " будут", " будет",
                   " работ", " согласно", " которые", " которая", " пункт", " сформирован",
                   " утвержден", " формиру", " реализу", " выполн", " заплан", " намечен",
                   " предусмотр", " включен", " учтен")
_NOMINATIVE = {
    "адресную": "адресная", "адресной": "адресная", "адресном": "адресный",
    "адресного": "адресный", "адресным": "адресный", "адресных": "адресные",
    "адресными": "адресные", "программу": "программа", "программы": "программа",
    "программой": "программа", "программе": "программа", "программ": "программы",
    "программами": "программы", "плана": "план", "планом": "план", "плане": "план",
    "плану": "план", "перечня": "перечень", "перечне": "перечень", "перечнем": "перечень",
    "перспективного": "перспективный", "перспективном": "перспективный",
    "перспективным": "перспективный", "перспективному": "перспективный",
    "муниципальную": "муниципальная", "муниципальной": "муниципальная",
    "региональную": "региональная", "региональной": "региональная",
    "ведомственную": "ведомственная", "ведомственной": "ведомственная",
    "государственную": "государственная", "государственной": "государственная",
    "краткосрочного": "краткосрочный", "краткосрочном": "краткосрочный",
    "проекта": "проект", "проекте": "проект", "проектом": "проект",
    "титульного": "титульный", "титульном": "титульный", "титульным": "титульный",
    "списка": "список", "списке": "список", "весеннего": "весенний", "весеннем": "весенний",
    "весенним": "весенний", "месячника": "месячник", "месячнике": "месячник",
    "месячником": "месячник", "агротехнического": "агротехнический",
    "агротехническом": "агротехнический", "периода": "период", "периоде": "период",
}
_GENITIVE_AFTER_PROJECT = {"адресная": "адресной", "программа": "программы",
                           "план": "плана", "перечень": "перечня"}


def _programme_name(raw: str) -> str:
    """The programme phrase cut before its year or verb, head words in the nominative."""
    text = " " + raw.strip() + " "
    cut = len(text)
    for stop in _PROGRAMME_STOP:
        position = text.find(stop, 1)
        if 0 < position < cut:
            cut = position
    words = text[:cut].split() or raw.split()
    if words and words[0].startswith("проект"):
        # «проект адресной программы»: the head is «проект», the rest stays genitive.
        return " ".join(["проект", *words[1:]])
    return " ".join([_NOMINATIVE.get(word, word) for word in words[:2]] + words[2:])


def extract_plan(text: object) -> tuple[int | None, str | None]:
    """The year and the programme a fix is put off to, as an answer names them.

    «Работы включены в адресную программу текущего ремонта на 2022 год» gives
    ``(2022, "адресная программа текущего ремонта")``; «будут выполнены в срок до 30.04.2021»
    gives ``(2021, None)``; «включено в план текущего ремонта» gives ``(None, "план текущего
    ремонта")``. The first sentence with a planning cue is read; a year right after the
    programme wins over other years in it.

    Args:
        text: An official answer (anything else, ``None`` or NaN gives ``(None, None)``).

    Returns:
        ``(planned_year, programme)``, either may be ``None``.
    """
    prepared = _prepare(text)
    if not prepared:
        return None, None
    return _classify_prepared(prepared).plan


def _plan_of(sentences: Sequence[str], planned: Sequence[int]) -> tuple[int | None, str | None]:
    year: int | None = None
    programme: str | None = None
    for index in planned:
        sentence = sentences[index]
        found = _PROGRAMME.search(sentence)
        if found is not None and programme is None:
            programme = _programme_name(found.group(1))
            tail = _YEAR.search(sentence[found.start(1):])
            if tail is not None and year is None:
                year = int(tail.group(1))
        if year is None:
            any_year = _YEAR.search(sentence)
            if any_year is not None:
                year = int(any_year.group(1))
        if year is not None and programme is not None:
            break
    return year, programme


def _clip(sentence: str) -> str:
    return sentence if len(sentence) <= _EVIDENCE_CHARS else sentence[: _EVIDENCE_CHARS - 1] + "…"


def classify_answer(text: object) -> AnswerOutcome:
    """Classify one official answer.

    Args:
        text: The answer (``last_answer_text``). ``None``, NaN, empty, bytes and HTML are
            accepted; the text is cut to :data:`MAX_ANSWER_CHARS` characters.

    Returns:
        The outcome; ``AnswerOutcome("other")`` for an empty or unreadable answer.
    """
    prepared = _prepare(text)
    if not prepared.strip():
        return AnswerOutcome("other")
    return _classify_prepared(prepared)


@lru_cache(maxsize=1 << 15)
def _classify_prepared(text: str) -> AnswerOutcome:
    sentences = _sentences(text)
    found = _atoms_by_sentence(sentences)
    hits: dict[str, list[int]] = {}
    for name, _, required, vetoes in LABELLING_FUNCTIONS:
        where = [i for i, atoms in enumerate(found)
                 if atoms >= required and not atoms & vetoes]
        if where:
            hits[name] = where
    if hits.keys() - WEAK_FUNCTIONS:
        for name in WEAK_FUNCTIONS:
            hits.pop(name, None)
    fired: dict[str, list[int]] = {}
    for name, where in hits.items():
        fired.setdefault(_KIND_OF[name], []).extend(where)
    # Done and planned together: part was fixed, the rest put off. «Частично» alone (without
    # anything done or planned) is dropped.
    near = [i for i in fired.get("planned", ()) if "capital_plan" not in found[i]]
    if "done" in fired and near:  # capital repairs years ahead are no remainder of a fix
        fired.setdefault("partly_done", sorted(near))
    elif "partly_done" in fired and not {"done", "planned"} & fired.keys():
        del fired["partly_done"]
    flags = tuple(name for name in PRECEDENCE if name in fired)
    year, programme = _plan_of(sentences, sorted(set(fired.get("planned", ()))))
    functions = tuple(name for name, *_ in LABELLING_FUNCTIONS if name in hits)
    if not flags:
        return AnswerOutcome("other", (), year, programme, None, functions)
    winner = flags[0]
    evidence = _clip(sentences[min(fired[winner])])
    return AnswerOutcome(winner, flags, year, programme, evidence, functions)


_KIND_OF = {name: kind for name, kind, *_ in LABELLING_FUNCTIONS}


def classify_answers(texts: Iterable[object]) -> list[AnswerOutcome]:
    """Classify many answers; equal answers (templates are common) are classified once.

    Args:
        texts: Answers, as in :func:`classify_answer`.

    Returns:
        One outcome per answer, in order.
    """
    memo: dict[str, AnswerOutcome] = {}
    outcomes: list[AnswerOutcome] = []
    for text in texts:
        key = text if isinstance(text, str) else None
        if key is not None and key in memo:
            outcomes.append(memo[key])
            continue
        outcome = classify_answer(text)
        if key is not None:
            memo[key] = outcome
        outcomes.append(outcome)
    return outcomes


def outcome_types(texts: Iterable[object]) -> list[str]:
    """Only the outcome type of each answer (see :func:`classify_answers`)."""
    return [outcome.type for outcome in classify_answers(texts)]


def outcome_mix(types: Iterable[str]) -> dict[str, int]:
    """How many answers of each type, in :data:`OUTCOME_TYPES` order, zero counts left out."""
    counts = Counter(types)
    return {name: counts[name] for name in OUTCOME_TYPES if counts.get(name)}


def outcome_scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision and recall per outcome type of predictions against hand labels.

    Args:
        truth: The outcome a person assigned to each answer.
        predicted: The classifier's outcome for the same answers.

    Returns:
        ``{type: {"precision", "recall", "support", "predicted"}}`` for every type that occurs
        in either list; precision (recall) is NaN for a type never predicted (never true).
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted differ in length")
    scores: dict[str, dict[str, float]] = {}
    for kind in OUTCOME_TYPES:
        hits = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p == kind)
        support = sum(1 for t in truth if t == kind)
        guessed = sum(1 for p in predicted if p == kind)
        if support or guessed:
            scores[kind] = {
                "precision": hits / guessed if guessed else float("nan"),
                "recall": hits / support if support else float("nan"),
                "support": float(support),
                "predicted": float(guessed),
            }
    return scores
