"""Campaign message templates: data files per kind, channel and language, and filling them in.

Each file under ``notifier/templates/`` is ``<kind>.<channel>.<language>.yml``. An SMS template is
the text registered on India's DLT platform, with its entity id, template id and header (sender
id); its placeholders are DLT's ``{#var#}`` (at most 30 characters) and ``{#url#}`` (a
whitelisted URL), filled in the order of ``variables``. A WhatsApp template is a Twilio Content
template (``content_sid``) with Twilio's ``{{1}}``, ``{{2}}``… placeholders; the same text goes as
free text inside the 24-hour window. The sent text is always the registered one with its
variables filled, nothing else (tests/notifier/test_messages.py proves it for every template).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from bot import names

#: Where the template files live.
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: Campaign kinds (the CLI's names).
NEW_ACCOUNT_NUMBER = "new-account-number"
DISCONNECTION_WARNING = "disconnection-warning"
KINDS = (NEW_ACCOUNT_NUMBER, DISCONNECTION_WARNING)
CHANNELS = ("sms", "whatsapp")
LANGUAGES = ("hi", "en")
#: DLT's limit on a ``{#var#}`` value, in characters.
DLT_VAR_MAX = 30
#: DLT placeholders, in the order they appear.
DLT_PLACEHOLDER = re.compile(r"\{#(var|url)#\}")
#: Twilio Content placeholders.
CONTENT_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")


class TemplateError(ValueError):
    """A template file is missing a field, or its placeholders do not match its variables."""


class ValueDoesNotFit(ValueError):
    """A value is longer than its DLT placeholder allows, or is not a URL where one is asked."""


@dataclass(frozen=True)
class Template:
    """One registered message: its text with placeholders and the variables filling them."""

    kind: str
    channel: str
    language: str
    text: str
    variables: tuple[str, ...]
    dlt_entity_id: str | None = None
    dlt_template_id: str | None = None
    header: str | None = None
    content_sid: str | None = None
    path: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.channel, self.language)

    def render(self, values: dict[str, str]) -> str:
        """The text to send: the registered text with every placeholder filled."""
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise KeyError(f"{self.path}: no value for {', '.join(missing)}")
        if self.channel == "sms":
            ordered = iter(self.variables)

            def fill(match: re.Match[str]) -> str:
                name = next(ordered)
                return check_dlt_value(match.group(1), str(values[name]), name)

            return DLT_PLACEHOLDER.sub(fill, self.text)
        return CONTENT_PLACEHOLDER.sub(
            lambda m: str(values[self.variables[int(m.group(1)) - 1]]), self.text
        )

    def content_variables(self, values: dict[str, str]) -> str | None:
        """ContentVariables (JSON) of a WhatsApp Content template; None for SMS."""
        if self.channel != "whatsapp":
            return None
        return json.dumps(
            {str(i): str(values[name]) for i, name in enumerate(self.variables, start=1)},
            ensure_ascii=False,
        )


def check_dlt_value(kind: str, value: str, name: str = "") -> str:
    """``value`` if it may fill a DLT ``{#var#}`` or ``{#url#}``; else :class:`ValueDoesNotFit`."""
    if kind == "var" and len(value) > DLT_VAR_MAX:
        raise ValueDoesNotFit(f"{name or 'value'} has {len(value)} characters; DLT allows 30")
    if kind == "url" and not re.match(r"^https?://\S+$", value):
        raise ValueDoesNotFit(f"{name or 'value'} is not a URL")
    if "\n" in value:
        raise ValueDoesNotFit(f"{name or 'value'} holds a line break")
    return value


def registered_pattern(template: Template) -> re.Pattern[str]:
    """A regex matching exactly the texts DLT accepts for an SMS template (its scrubber's rule)."""
    parts: list[str] = []
    last = 0
    for match in DLT_PLACEHOLDER.finditer(template.text):
        parts.append(re.escape(template.text[last : match.start()]))
        parts.append(r"([^\n]{0,30})" if match.group(1) == "var" else r"(https?://\S+)")
        last = match.end()
    parts.append(re.escape(template.text[last:]))
    return re.compile("".join(parts), re.DOTALL)


def _load(path: Path) -> Template:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        kind, channel, language = data["kind"], data["channel"], data["language"]
        text, variables = str(data["text"]), tuple(str(v) for v in data["variables"])
    except KeyError as exc:
        raise TemplateError(f"{path.name}: missing {exc.args[0]}") from None
    if path.name != f"{kind}.{channel}.{language}.yml":
        raise TemplateError(f"{path.name}: kind, channel and language disagree with the name")
    if channel == "sms":
        found = len(DLT_PLACEHOLDER.findall(text))
        for field in ("dlt_entity_id", "dlt_template_id", "header"):
            if not data.get(field):
                raise TemplateError(f"{path.name}: an SMS template needs {field}")
    else:
        numbers = sorted({int(n) for n in CONTENT_PLACEHOLDER.findall(text)})
        if numbers != list(range(1, len(numbers) + 1)):
            raise TemplateError(f"{path.name}: placeholders must be {{{{1}}}}..{{{{n}}}}")
        found = len(numbers)
        if not data.get("content_sid"):
            raise TemplateError(f"{path.name}: a WhatsApp template needs content_sid")
    if found != len(variables):
        raise TemplateError(f"{path.name}: {found} placeholders but {len(variables)} variables")
    return Template(
        kind=kind,
        channel=channel,
        language=language,
        text=text,
        variables=variables,
        dlt_entity_id=_text(data.get("dlt_entity_id")),
        dlt_template_id=_text(data.get("dlt_template_id")),
        header=_text(data.get("header")),
        content_sid=_text(data.get("content_sid")),
        path=path.name,
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@cache
def all_templates(directory: Path = TEMPLATE_DIR) -> dict[tuple[str, str, str], Template]:
    """Every template, by (kind, channel, language); a missing one is a :class:`TemplateError`."""
    found = {t.key: t for t in (_load(p) for p in sorted(directory.glob("*.yml")))}
    for kind in KINDS:
        for channel in CHANNELS:
            for language in LANGUAGES:
                if (kind, channel, language) not in found:
                    raise TemplateError(f"no template {kind}.{channel}.{language}.yml")
    return found


def template(kind: str, channel: str, language: str) -> Template:
    """The template of a kind, channel and language (English when the language has none)."""
    templates = all_templates()
    return templates.get((kind, channel, language)) or templates[(kind, channel, "en")]


__all__ = [
    "CHANNELS",
    "DISCONNECTION_WARNING",
    "KINDS",
    "LANGUAGES",
    "NEW_ACCOUNT_NUMBER",
    "Template",
    "TemplateError",
    "ValueDoesNotFit",
    "all_templates",
    "campaign_values",
    "mask_name",
    "check_dlt_value",
    "registered_pattern",
    "template",
]


def mask_name(name: str) -> str:
    """A name by its initials, as a push shows it (:func:`bot.names.mask_name`), cut to DLT's
    30-character limit on a variable by whole words."""
    masked = names.mask_name(name)
    while len(masked) > DLT_VAR_MAX and " " in masked:
        masked = masked.rsplit(" ", 1)[0]
    return masked[:DLT_VAR_MAX]


def campaign_values(
    *,
    name: str,
    new_account_no: str,
    discom: str,
    old_account_no: str | None = None,
    valid_until: dt.date | None = None,
    amount_paise: int | None = None,
    cut_from: dt.datetime | None = None,
    pay_url: str | None = None,
) -> dict[str, str]:
    """The variables every template of a campaign may use, written as the messages show them."""
    from bot.money import group_indian
    from notifier.rules import as_ist

    values = {
        "name": mask_name(name),
        "new_account_no": new_account_no,
        "old_account_no": old_account_no or "",
        "discom": discom,
    }
    if valid_until is not None:
        values["valid_until"] = f"{valid_until:%d-%m-%Y}"
    if amount_paise is not None:
        rupees, paise = divmod(int(amount_paise), 100)
        values["amount"] = f"{group_indian(rupees)}.{paise:02d}"
    if cut_from is not None:
        values["cut_from"] = f"{as_ist(cut_from):%d-%m-%Y %H:%M}"
    if pay_url is not None:
        values["pay_url"] = pay_url
    return values
