"""The CSV importers: what an operator at a discom sees for good files, bad rows and bad files."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot import importers
from bot.importers import BadValue, import_file, values
from bot.store import Bill, Consumer, PrepaidBalance, Staff, count_rows, session_scope

CONSUMER_HEADER = (
    "discom,new_account_no,old_account_no,name,mobile,category,meter_type,area,language,"
    "whatsapp_opt_in"
)
GOOD_CONSUMERS = [
    "KESCO,2300000001,1234567,राम कुमार,9876543210,domestic,postpaid,Kidwai Nagar,hi,yes",
    "KESCO,2300000002,7654321,Sharma General Store,09876543211,commercial,smart_postpaid,"
    "Govind Nagar,hi,no",
    "KESCO,2300000003,,Sunita Sharma,,domestic,smart_prepaid,Swaroop Nagar,en,yes",
]
BILL_HEADER = "new_account_no,bill_month,amount_due,due_date,arrears"
BALANCE_HEADER = "new_account_no,balance,as_of"
STAFF_HEADER = "mobile,name,role,area"


def write(tmp_path: Path, text: str, name: str = "data.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def consumers_csv(tmp_path: Path, *rows: str, name: str = "consumers.csv") -> Path:
    return write(tmp_path, "\n".join([CONSUMER_HEADER, *rows]) + "\n", name)


def counts(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {
            model.__tablename__: count_rows(session, model)
            for model in (Consumer, Bill, PrepaidBalance, Staff)
        }


def consumer(engine: Engine, new: str) -> Consumer:
    with session_scope(engine) as session:
        found = session.execute(select(Consumer).where(Consumer.new_account_no == new)).scalar_one()
        session.expunge(found)
        return found


def run(engine: Engine, kind: str, path: Path, **kwargs: object) -> importers.ImportReport:
    return import_file(engine, kind, path, progress=False, **kwargs)  # type: ignore[arg-type]


def load_good_consumers(engine: Engine, tmp_path: Path) -> None:
    report = run(engine, "consumers", consumers_csv(tmp_path, *GOOD_CONSUMERS, name="good.csv"))
    assert report.ok, report.summary()


EMPTY = {"consumers": 0, "bills": 0, "prepaid_balances": 0, "staff": 0}


# --------------------------------------------------------------------------- good files


def test_consumers_are_imported_with_normalised_values(engine: Engine, tmp_path: Path) -> None:
    report = run(engine, "consumers", consumers_csv(tmp_path, *GOOD_CONSUMERS))

    assert report.ok
    assert (report.rows, report.inserted, report.updated, report.unchanged, report.bad) == (
        3,
        3,
        0,
        0,
        0,
    )
    assert report.errors == []
    home = consumer(engine, "2300000001")
    assert home.name == "राम कुमार"
    assert home.mobile == "+919876543210"
    assert home.old_account_no == "1234567"
    assert home.whatsapp_opt_in is True
    shop = consumer(engine, "2300000002")
    assert shop.mobile == "+919876543211"
    assert shop.whatsapp_opt_in is False
    new_connection = consumer(engine, "2300000003")
    assert new_connection.old_account_no is None
    assert new_connection.mobile is None
    assert "3 rows read, 3 inserted, 0 updated, 0 unchanged, 0 bad." in report.summary()


@pytest.mark.parametrize(
    "written",
    ["9876543210", "09876543210", "+91 98765 43210", "91-98765-43210", "+919876543210",
     "(+91) 98765-43210", "0091 98765 43210"],
)  # fmt: skip
def test_every_indian_way_of_writing_a_mobile_is_accepted(written: str) -> None:
    assert values.normalise_mobile(written) == "+919876543210"


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("12345", "'12345' is not a valid Indian mobile number"),
        ("0512 2345678", "'0512 2345678' is a landline number, not a mobile"),
        ("+44 7700 900123", "'+44 7700 900123' is not an Indian (+91) number"),
        ("98765432", "'98765432' is not a valid Indian mobile number"),
        (
            "9.87654E+09",
            "'9.87654E+09' was turned into a number by Excel; format the column as Text",
        ),
        ("call me", "'call me' is not a valid Indian mobile number"),
    ],
)
def test_numbers_that_are_not_indian_mobiles_are_explained(written: str, reason: str) -> None:
    with pytest.raises(BadValue) as caught:
        values.normalise_mobile(written)
    assert str(caught.value) == reason


def test_importing_the_same_file_again_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = consumers_csv(tmp_path, *GOOD_CONSUMERS)
    run(engine, "consumers", path)
    stamped = consumer(engine, "2300000001").updated_at

    again = run(engine, "consumers", path)

    assert again.ok
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert consumer(engine, "2300000001").updated_at == stamped


def test_a_changed_row_is_updated_and_the_rest_left_alone(engine: Engine, tmp_path: Path) -> None:
    run(engine, "consumers", consumers_csv(tmp_path, *GOOD_CONSUMERS))
    untouched = consumer(engine, "2300000002").updated_at
    moved = GOOD_CONSUMERS[0].replace("9876543210", "9123456789").replace(",hi,yes", ",en,no")

    report = run(engine, "consumers", consumers_csv(tmp_path, moved, *GOOD_CONSUMERS[1:]))

    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 2)
    home = consumer(engine, "2300000001")
    assert (home.mobile, home.language, home.whatsapp_opt_in) == ("+919123456789", "en", False)
    assert consumer(engine, "2300000002").updated_at == untouched


def test_bom_extra_columns_blank_lines_and_loose_spelling_are_accepted(
    engine: Engine, tmp_path: Path
) -> None:
    text = (
        "\ufeffDiscom, New Account No ,old_account_no,name,mobile,category,meter_type,area,"
        "language,whatsapp_opt_in,remarks\r\n"
        "\r\n"
        "kesco,2300000001,1234567,  Ram   Kumar ,+91 98765 43210,Domestic,Smart Prepaid,"
        "Kidwai Nagar,HI,Yes,called twice\r\n"
        ",,,,,,,,,,\r\n"
        "KESCO,2300000002,,Shop,9876543211,Public Institution,smart-postpaid,,English,N,\r\n"
    )
    report = run(engine, "consumers", write(tmp_path, text))

    assert report.ok, report.summary()
    assert report.rows == 2
    home = consumer(engine, "2300000001")
    assert (home.discom, home.name, home.category, home.meter_type, home.language) == (
        "KESCO",
        "Ram Kumar",
        "domestic",
        "smart_prepaid",
        "hi",
    )
    shop = consumer(engine, "2300000002")
    assert (shop.category, shop.meter_type, shop.area, shop.language, shop.whatsapp_opt_in) == (
        "public_institution",
        "smart_postpaid",
        "",
        "en",
        False,
    )


def test_a_semicolon_separated_export_is_read(engine: Engine, tmp_path: Path) -> None:
    rows = [row.replace(",", ";") for row in [CONSUMER_HEADER, *GOOD_CONSUMERS]]
    report = run(engine, "consumers", write(tmp_path, "\n".join(rows) + "\n"))
    assert report.ok, report.summary()
    assert counts(engine)["consumers"] == 3


def test_a_quoted_name_with_a_comma_is_one_value(engine: Engine, tmp_path: Path) -> None:
    row = 'KESCO,2300000009,,"Kumar, Ram",9876543210,domestic,postpaid,Juhi,hi,yes'
    report = run(engine, "consumers", consumers_csv(tmp_path, row))
    assert report.ok
    assert consumer(engine, "2300000009").name == "Kumar, Ram"


def test_same_old_number_in_two_discoms_is_fine(engine: Engine, tmp_path: Path) -> None:
    rows = [
        "KESCO,2300000001,1234567,A,,domestic,postpaid,,hi,no",
        "PVVNL,3300000001,1234567,B,,domestic,postpaid,,hi,no",
    ]
    assert run(engine, "consumers", consumers_csv(tmp_path, *rows)).ok


def test_large_files_are_imported_batch_by_batch(engine: Engine, tmp_path: Path) -> None:
    rows = [
        f"KESCO,23{n:08d},{1000000 + n},Consumer {n},,domestic,postpaid,Barra,hi,no"
        for n in range(25)
    ]
    path = consumers_csv(tmp_path, *rows)
    report = run(engine, "consumers", path, batch_size=4)
    assert (report.inserted, report.bad) == (25, 0)
    again = run(engine, "consumers", path, batch_size=4)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 25)


# --------------------------------------------------------------------------- bad rows


def bad_rows_leave_db_unchanged(
    engine: Engine, tmp_path: Path, rows: list[str], expected: list[str]
) -> importers.ImportReport:
    """Import consumers rows that include bad ones; check nothing changed and the messages."""
    before = counts(engine)
    report = run(engine, "consumers", consumers_csv(tmp_path, *rows, name="bad.csv"))
    assert not report.ok
    assert counts(engine) == before
    summary = report.summary()
    for message in expected:
        assert message in summary, summary
    assert summary.startswith("Nothing imported from bad.csv:")
    return report


def test_an_invalid_mobile_is_reported_by_line_and_column(engine: Engine, tmp_path: Path) -> None:
    rows = [*GOOD_CONSUMERS[:2], "KESCO,2300000004,,Ram,12345,domestic,postpaid,,hi,yes"]
    report = bad_rows_leave_db_unchanged(
        engine,
        tmp_path,
        rows,
        ["line 4, column mobile: '12345' is not a valid Indian mobile number"],
    )
    assert report.errors == [(4, "mobile", "'12345' is not a valid Indian mobile number")]
    assert "1 bad row out of 3. Fix it, or run again with --skip-bad-rows" in report.summary()


def test_account_numbers_with_wrong_digits(engine: Engine, tmp_path: Path) -> None:
    rows = [
        "KESCO,230000001,1234567,A,,domestic,postpaid,,hi,no",
        "KESCO,2300000002,12345,B,,domestic,postpaid,,hi,no",
        "KESCO,23000000AB,123456789,C,,domestic,postpaid,,hi,no",
        "KESCO,,1234568,D,,domestic,postpaid,,hi,no",
    ]
    bad_rows_leave_db_unchanged(
        engine,
        tmp_path,
        rows,
        [
            "line 2, column new_account_no: '230000001' has 9 digits; a new account number has "
            "exactly 10 digits",
            "line 3, column old_account_no: '12345' has 5 digits; an old account number has 6 to 8 "
            "digits",
            "line 4, column new_account_no: '23000000AB' is not an account number: use digits only",
            "line 4, column old_account_no: '123456789' has 9 digits",
            "line 5, column new_account_no: is empty",
        ],
    )


def test_every_column_is_checked(engine: Engine, tmp_path: Path) -> None:
    rows = ["UPPCL,2300000001,,  ,9876543210,farm,solar,Juhi,ur,maybe"]
    report = bad_rows_leave_db_unchanged(
        engine,
        tmp_path,
        rows,
        [
            "line 2, column discom: 'UPPCL' is not a discom; use one of KESCO, PVVNL, MVVNL, "
            "DVVNL, PUVVNL",
            "line 2, column name: is empty",
            "line 2, column category: 'farm' is not a category; use one of domestic, commercial, "
            "public_institution, industrial",
            "line 2, column meter_type: 'solar' is not a meter type",
            "line 2, column language: 'ur' is not a language; use one of hi, en",
            "line 2, column whatsapp_opt_in: 'maybe' is not yes or no",
        ],
    )
    assert report.bad == 1
    assert len(report.errors) == 6


def test_duplicates_within_the_file_name_both_lines(engine: Engine, tmp_path: Path) -> None:
    rows = [
        "KESCO,2300000001,1234567,A,,domestic,postpaid,,hi,no",
        "KESCO,2300000002,7654321,B,,domestic,postpaid,,hi,no",
        "KESCO,2300000001,1111111,C,,domestic,postpaid,,hi,no",
        "KESCO,2300000004,7654321,D,,domestic,postpaid,,hi,no",
    ]
    bad_rows_leave_db_unchanged(
        engine,
        tmp_path,
        rows,
        [
            "line 4, column new_account_no: duplicate: account 2300000001 is also on line 2",
            "line 5, column old_account_no: duplicate: old number 7654321 (KESCO) is also on "
            "line 3",
        ],
    )


def test_an_old_number_of_another_consumer_in_the_db_is_bad(engine: Engine, tmp_path: Path) -> None:
    load_good_consumers(engine, tmp_path)
    rows = ["KESCO,2300000009,1234567,Someone Else,,domestic,postpaid,,hi,no"]
    bad_rows_leave_db_unchanged(
        engine,
        tmp_path,
        rows,
        [
            "line 2, column old_account_no: old number 1234567 already belongs to account "
            "2300000001 in the database"
        ],
    )


def test_a_bad_row_after_many_good_batches_rolls_everything_back(
    engine: Engine, tmp_path: Path
) -> None:
    rows = [
        f"KESCO,23{n:08d},{1000000 + n},Consumer {n},,domestic,postpaid,Barra,hi,no"
        for n in range(20)
    ]
    rows.append("KESCO,2399999999,,Late,,domestic,postpaid,,hi,not sure")
    report = run(engine, "consumers", consumers_csv(tmp_path, *rows), batch_size=3)
    assert not report.ok
    assert counts(engine) == EMPTY
    assert report.errors == [(22, "whatsapp_opt_in", "'not sure' is not yes or no")]


def test_skip_bad_rows_imports_the_good_ones(engine: Engine, tmp_path: Path) -> None:
    rows = [
        *GOOD_CONSUMERS,
        "KESCO,2300000004,,Ram,12345,domestic,postpaid,,hi,yes",
        "KESCO,2300000001,,Twice,,domestic,postpaid,,hi,yes",
    ]
    report = run(engine, "consumers", consumers_csv(tmp_path, *rows), skip_bad_rows=True)

    assert report.ok
    assert (report.inserted, report.bad) == (3, 2)
    assert counts(engine)["consumers"] == 3
    assert consumer(engine, "2300000001").name == "राम कुमार"
    summary = report.summary()
    assert "5 rows read, 3 inserted, 0 updated, 0 unchanged, 2 bad (skipped)." in summary
    assert "line 5, column mobile: '12345' is not a valid Indian mobile number" in summary
    assert "line 6, column new_account_no: duplicate: account 2300000001 is also on line 2" in (
        summary
    )


def test_a_row_with_too_many_or_too_few_values(engine: Engine, tmp_path: Path) -> None:
    rows = [
        "KESCO,2300000001,,Kumar, Ram,9876543210,domestic,postpaid,Juhi,hi,yes",
        "KESCO,2300000002,,Ram",
        "KESCO,2300000003,,Ram,,domestic,postpaid,Juhi,hi,yes,,",
    ]
    report = bad_rows_leave_db_unchanged(
        engine,
        tmp_path,
        rows,
        [
            "line 2: has 11 values but the header has 10 columns; a value with a comma in it must "
            "be in double quotes",
            "line 3: has 4 values but the header has 10 columns",
        ],
    )
    assert report.bad == 2  # trailing empty values on line 4 are harmless


def test_very_many_bad_rows_are_summarised(engine: Engine, tmp_path: Path) -> None:
    rows = [f"KESCO,23{n:08d},,Consumer,12345,domestic,postpaid,,hi,no" for n in range(150)]
    report = run(engine, "consumers", consumers_csv(tmp_path, *rows))
    summary = report.summary()
    assert summary.startswith("Nothing imported from consumers.csv: all 150 rows are bad.\n")
    assert summary.count("is not a valid Indian mobile number") == 100
    assert summary.endswith("  ... and 50 more")


# --------------------------------------------------------------------------- bad files


def bad_file(engine: Engine, path: Path, kind: str = "consumers") -> str:
    """Import a file that cannot be imported; check nothing changed; return the summary."""
    before = counts(engine)
    report = run(engine, kind, path)
    assert not report.ok
    assert report.file_error is not None
    assert counts(engine) == before
    assert report.summary() == f"Nothing imported from {path.name}: {report.file_error}"
    return report.file_error


def test_missing_columns_are_named(engine: Engine, tmp_path: Path) -> None:
    header = CONSUMER_HEADER.replace(",mobile", "").replace(",category", "")
    path = write(tmp_path, header + "\nKESCO,2300000001,,Ram,postpaid,Juhi,hi,yes\n")
    assert bad_file(engine, path) == (
        "missing columns mobile, category (the header needs discom,new_account_no,old_account_no,"
        "name,mobile,category,meter_type,area,language,whatsapp_opt_in)"
    )


def test_a_file_without_a_header_row(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "\n".join(GOOD_CONSUMERS) + "\n")
    message = bad_file(engine, path)
    assert message.startswith(
        "the first line is not the header row of a consumers file: expected columns discom,"
    )
    assert "found 'KESCO,2300000001,1234567" in message


def test_the_wrong_kind_of_file_is_recognised(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, BILL_HEADER + "\n2300000001,2024-05,100.00,2024-05-20,0\n")
    assert bad_file(engine, path) == (
        "this looks like a bills file, not consumers; import it with `bijli import bills FILE`"
    )


def test_latin1_is_detected_with_the_line(engine: Engine, tmp_path: Path) -> None:
    load_good_consumers(engine, tmp_path)
    rows = [*GOOD_CONSUMERS[1:], "KESCO,2300000005,,José Müller,,domestic,postpaid,,en,no"]
    text = "\n".join([CONSUMER_HEADER, *rows]) + "\n"
    path = write(tmp_path, text.replace("राम कुमार", "Ram"), encoding="latin-1")
    assert bad_file(engine, path) == (
        "the file is not UTF-8 (line 4 has characters that are not UTF-8); "
        "save it as 'CSV UTF-8' in Excel"
    )


def test_latin1_far_into_a_file_rolls_back_the_batches_before_it(
    engine: Engine, tmp_path: Path
) -> None:
    rows = [
        f"KESCO,23{n:08d},{1000000 + n},Consumer {n},,domestic,postpaid,Barra,hi,no"
        for n in range(3000)
    ]
    rows.append("KESCO,2399999999,,Müller,,domestic,postpaid,,en,no")
    path = write(tmp_path, "\n".join([CONSUMER_HEADER, *rows]) + "\n", encoding="latin-1")
    before = counts(engine)
    report = import_file(engine, "consumers", path, progress=False, batch_size=100)
    assert report.file_error is not None
    assert "line 3002 has characters that are not UTF-8" in report.file_error
    assert counts(engine) == before


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\n  \r\n"])
def test_an_empty_file(engine: Engine, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    assert bad_file(engine, path) == "the file is empty"


def test_a_header_without_rows(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, CONSUMER_HEADER + "\n\n")
    assert bad_file(engine, path) == "the file has a header row but no data rows"


def test_a_png_is_not_a_csv(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    assert bad_file(engine, path) == "this is a PNG image, not a CSV file"


def test_an_xlsx_workbook_is_recognised(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "consumers.xlsx"
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
        book.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    assert bad_file(engine, path) == (
        "this is an Excel workbook (.xlsx), not a CSV file; "
        "in Excel use File > Save As > 'CSV UTF-8 (Comma delimited)'"
    )


def test_a_zip_archive_is_recognised(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "consumers.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("consumers.csv", CONSUMER_HEADER)
    assert bad_file(engine, path) == "this is a ZIP archive, not a CSV file; unzip it first"


def test_an_old_xls_workbook_is_recognised(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "consumers.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512))
    assert bad_file(engine, path).startswith("this is an old Excel workbook (.xls), not a CSV file")


def test_a_utf16_export_is_recognised(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, CONSUMER_HEADER + "\n", encoding="utf-16")
    assert bad_file(engine, path).startswith("the file is UTF-16 ('Unicode Text'), not UTF-8")


def test_other_binary_data_is_not_a_csv(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "dump.csv"
    path.write_bytes(b"discom\x00\x01\x02" * 50)
    assert bad_file(engine, path).startswith("this is not a CSV file (it holds binary data)")


def test_a_web_page_is_not_a_csv(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "<!DOCTYPE html>\n<html><body>Session expired</body></html>\n")
    assert bad_file(engine, path) == "this is a web page or XML document, not a CSV file"


def test_a_missing_file(engine: Engine, tmp_path: Path) -> None:
    assert bad_file(engine, tmp_path / "nowhere.csv") == (
        f"there is no file at {tmp_path / 'nowhere.csv'}"
    )


def test_an_unknown_kind_is_a_programming_error(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown import kind 'meters'"):
        import_file(engine, "meters", tmp_path / "x.csv")


# --------------------------------------------------------------------------- bills


def bills_csv(tmp_path: Path, *rows: str) -> Path:
    return write(tmp_path, "\n".join([BILL_HEADER, *rows]) + "\n", "bills.csv")


def test_bills_are_stored_in_paise(engine: Engine, tmp_path: Path) -> None:
    load_good_consumers(engine, tmp_path)
    rows = [
        "2300000001,2024-05,1234.5,2024-06-15,0",
        '2300000001,2024-06,"1,23,456.78",2024-07-15,',
        "2300000002,2024-06,₹ 999,2024-07-15,100.05",
    ]
    report = run(engine, "bills", bills_csv(tmp_path, *rows))
    assert report.ok, report.summary()
    with session_scope(engine) as session:
        bills = {
            (b.new_account_no, b.bill_month): (b.amount_due_paise, b.due_date, b.arrears_paise)
            for b in session.execute(select(Bill)).scalars()
        }
    assert bills == {
        ("2300000001", "2024-05"): (123450, dt.date(2024, 6, 15), 0),
        ("2300000001", "2024-06"): (12345678, dt.date(2024, 7, 15), 0),
        ("2300000002", "2024-06"): (99900, dt.date(2024, 7, 15), 10005),
    }
    again = run(engine, "bills", bills_csv(tmp_path, *rows))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    changed = run(engine, "bills", bills_csv(tmp_path, rows[0].replace("1234.5", "1234.55")))
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 0)


def test_bad_bills(engine: Engine, tmp_path: Path) -> None:
    load_good_consumers(engine, tmp_path)
    rows = [
        "1234567890,2024-05,100.00,2024-06-15,0",
        "2300000001,2024-13,12.345,15/06/2024,-5",
        "2300000001,May-24,1e3,2024-06-15,0",
        "2300000002,2024-05,100.00,2024-06-15,0",
        "2300000002,2024-05,200.00,2024-06-15,0",
    ]
    before = counts(engine)
    report = run(engine, "bills", bills_csv(tmp_path, *rows))
    assert counts(engine) == before
    assert report.errors == [
        (2, "new_account_no", "account 1234567890 is not in consumers; import consumers first"),
        (3, "bill_month", "'2024-13' is not a month in YYYY-MM form, e.g. 2024-05"),
        (3, "amount_due", "'12.345' has more than 2 decimal places"),
        (3, "due_date", "'15/06/2024' is not a date in YYYY-MM-DD form, e.g. 2024-05-15"),
        (3, "arrears", "'-5' is negative; it must be 0 or more"),
        (4, "bill_month", "'May-24' is not a month in YYYY-MM form, e.g. 2024-05"),
        (4, "amount_due", "'1e3' is not an amount in rupees like 1234.50"),
        (
            6,
            "bill_month",
            "duplicate: the bill of account 2300000002 for 2024-05 is also on line 5",
        ),
    ]


# --------------------------------------------------------------------------- prepaid balances


def test_prepaid_balances_may_be_negative_and_times_default_to_ist(
    engine: Engine, tmp_path: Path
) -> None:
    load_good_consumers(engine, tmp_path)
    text = "\n".join(
        [
            BALANCE_HEADER,
            "2300000001,-16250.00,2024-05-01T10:30:00",
            "2300000002,45.5,2024-05-01T10:30:00+05:30",
            "2300000003,0,2024-05-01T05:00:00Z",
        ]
    )
    path = write(tmp_path, text + "\n", "balances.csv")
    report = run(engine, "prepaid-balances", path)
    assert report.ok, report.summary()
    with session_scope(engine) as session:
        stored = {
            b.new_account_no: (b.balance_paise, b.as_of)
            for b in session.execute(select(PrepaidBalance)).scalars()
        }
    assert stored == {
        "2300000001": (-1625000, dt.datetime(2024, 5, 1, 5, 0)),
        "2300000002": (4550, dt.datetime(2024, 5, 1, 5, 0)),
        "2300000003": (0, dt.datetime(2024, 5, 1, 5, 0)),
    }
    assert run(engine, "prepaid-balances", path).unchanged == 3


def test_bad_prepaid_balances(engine: Engine, tmp_path: Path) -> None:
    load_good_consumers(engine, tmp_path)
    text = "\n".join(
        [
            BALANCE_HEADER,
            "9999999999,10,2024-05-01T10:30:00",
            "2300000001,ten,yesterday",
            "2300000002,10,2024-05-01",
            "2300000002,11,2024-05-02",
        ]
    )
    before = counts(engine)
    report = run(engine, "prepaid-balances", write(tmp_path, text + "\n", "balances.csv"))
    assert counts(engine) == before
    assert report.errors == [
        (2, "new_account_no", "account 9999999999 is not in consumers; import consumers first"),
        (3, "balance", "'ten' is not an amount in rupees like 1234.50"),
        (3, "as_of", "'yesterday' is not a date-time like 2024-05-01T10:30:00+05:30"),
        (5, "new_account_no", "duplicate: account 2300000002 is also on line 4"),
    ]


# --------------------------------------------------------------------------- staff


def test_staff_are_imported_and_updated_by_mobile(engine: Engine, tmp_path: Path) -> None:
    text = "\n".join(
        [
            STAFF_HEADER,
            "+91 90000 00001,Suresh Yadav,Meter Reader,Kidwai Nagar",
            "9000000002,Anita Srivastava,officer,Civil Lines",
        ]
    )
    path = write(tmp_path, text + "\n", "staff.csv")
    report = run(engine, "staff", path)
    assert (report.inserted, report.bad) == (2, 0)
    with session_scope(engine) as session:
        staff = {
            s.mobile: (s.name, s.role, s.active) for s in session.execute(select(Staff)).scalars()
        }
    assert staff == {
        "+919000000001": ("Suresh Yadav", "meter_reader", True),
        "+919000000002": ("Anita Srivastava", "officer", True),
    }
    moved = write(tmp_path, text.replace("Civil Lines", "Kakadeo") + "\n", "staff.csv")
    again = run(engine, "staff", moved)
    assert (again.inserted, again.updated, again.unchanged) == (0, 1, 1)


def test_bad_staff(engine: Engine, tmp_path: Path) -> None:
    text = "\n".join(
        [
            STAFF_HEADER,
            ",Nobody,officer,",
            "9000000001,Suresh,lineman,Juhi",
            "09000000001,Suresh again,officer,Juhi",
            "9000000003,Ravi,officer,Juhi",
            "+91 90000 00003,Ravi,officer,Juhi",
        ]
    )
    report = run(engine, "staff", write(tmp_path, text + "\n", "staff.csv"))
    assert counts(engine) == EMPTY
    assert report.errors == [
        (2, "mobile", "is empty; staff are known by their mobile number"),
        (3, "role", "'lineman' is not a staff role; use one of meter_reader, officer"),
        (4, "mobile", "duplicate: mobile +919000000001 is also on line 3"),
        (6, "mobile", "duplicate: mobile +919000000003 is also on line 5"),
    ]


# --------------------------------------------------------------------------- value parsers


@pytest.mark.parametrize(
    ("written", "paise"),
    [("0", 0), ("1234.5", 123450), ("1234.50", 123450), ("1,234.50", 123450),
     ("1,23,456", 12345600), ("Rs. 10", 1000), ("₹10.05", 1005), (" 7 ", 700)],
)  # fmt: skip
def test_rupees_to_paise(written: str, paise: int) -> None:
    assert values.parse_rupees(written) == paise


def test_an_empty_choice_says_what_to_write() -> None:
    with pytest.raises(BadValue) as caught:
        values.parse_meter_type(" ")
    assert str(caught.value) == "is empty; use one of postpaid, smart_postpaid, smart_prepaid"


def test_negative_rupees_only_where_allowed() -> None:
    assert values.parse_rupees("-16250.00", allow_negative=True) == -1625000
    with pytest.raises(BadValue, match="is negative"):
        values.parse_rupees("-1")


@pytest.mark.parametrize("written", ["1,2", "12.345", "", "1.2.3", "12,34", "-"])
def test_amounts_that_are_not_rupees(written: str) -> None:
    with pytest.raises(BadValue):
        values.parse_rupees(written)
