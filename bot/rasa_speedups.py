"""Two measured speed-ups to Rasa 3.6's server, installed by `bijli rasa-server` before it starts.

py-spy on the Rasa server at 10 concurrent senders: 53 % of its busy time was jsonschema
rebuilding a validator for every action-server response, and 11 % was resolving event classes
while reading trackers from Redis. Behaviour and error messages are unchanged; see
bench/RASA_RESULTS.md.
"""

from __future__ import annotations


def install() -> None:
    """Apply both speed-ups (idempotent enough: each just rebinds a method)."""
    cache_action_result_validator()
    cache_event_types()


def cache_action_result_validator() -> None:
    """Validate action server responses with one compiled JSON schema validator.

    Rasa checks every action server response with ``jsonschema.validate``, which validates the
    (constant) response schema against its metaschema and builds a new validator on every call:
    about 28 ms of CPU per custom action call, several calls a turn, all on the event loop. The
    same checks, with the same errors, cost about 1 ms with a validator built once.
    """
    from jsonschema import ValidationError, exceptions, validators
    from rasa.core.actions.action import DOCS_BASE_URL, RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    def _validate_action_result(self: RemoteAction, result: dict) -> bool:
        error = exceptions.best_match(validator.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = _validate_action_result


def cache_event_types() -> None:
    """Remember which Event class each event type name resolves to.

    Reading a tracker from Redis resolves every stored event's class by walking all subclasses
    of ``Event`` (``Event.resolve_by_type``): a few hundred events a turn, each walk about 30 µs.
    A name found once resolves to the same class again; unknown names still take the walk.
    """
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    resolved: dict[str, type[Event]] = {}

    def resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
        cls = resolved.get(type_name)
        if cls is None:
            cls = original(type_name, default)
            if cls is not None and cls is not default:
                resolved[type_name] = cls
        return cls

    Event.resolve_by_type = staticmethod(resolve_by_type)
