"""A meter reader's photo of a bill, captioned with the account number, reaches Rasa as text."""

from __future__ import annotations

from bot import store
from tests.gateway_stack import inbound_form
from tests.staff.conftest import READER


def test_a_photo_caption_goes_to_rasa_from_a_staff_number(
    post_signed, area, work, fake, stub_rasa
) -> None:
    form = inbound_form(
        "उपभोक्ता 456780 जांचें",
        sender=READER,
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0",
        MediaContentType0="image/jpeg",
    )
    assert post_signed("/twilio/messages", form).status_code == 200
    work()
    (request,) = stub_rasa.requests
    assert request["text"] == "उपभोक्ता 456780 जांचें"
    assert (request["mobile"], request["role"]) == (READER, "staff")


def test_a_deactivated_reader_is_sent_as_a_consumer(post_signed, area, engine, work, stub_rasa):
    with store.session_scope(engine) as session:
        session.execute(store.Staff.__table__.update().values(active=False))
    post_signed("/twilio/messages", inbound_form("verify 456780", sender=READER))
    work()
    assert stub_rasa.requests[0]["role"] == "consumer"
