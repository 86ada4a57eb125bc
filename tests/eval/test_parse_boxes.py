import pytest

from aerith.eval import parse_boxes
from aerith.parsing.boxes import FORMATS

SIZE = (800, 400)  # width, height
BOX = (80.0, 80.0, 240.0, 160.0)  # 10%..30% of the width, 20%..40% of the height
BOX2 = (400.0, 240.0, 560.0, 320.0)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("[100, 200, 300, 400]", "auto"),
        ("[100, 200, 300, 400]", "aerith"),
        ("The tank is at [100,200,300,400].", "auto"),
        ("{<10><20><30><40>|<0>}", "geochat"),
        ("{<10><20><30><40>|<0>}", "auto"),
        ("{<10><20><30><40>}", "auto"),
        ("[[100, 200, 300, 400]]", "vhm"),
        ("[[100, 200, 300, 400]]", "auto"),
        ("<bbox>[0.1, 0.2, 0.3, 0.4]</bbox>", "lhrs-nova"),
        ("<bbox>[0.1,0.2,0.3,0.4]</bbox>", "auto"),
        ("<ref>the tank</ref><box>(100,200),(300,400)</box>", "qwen"),
        ("<box>(100,200),(300,400)</box>", "auto"),
        ("[80, 80, 240, 160]", "pixel"),
        ("[0.1, 0.2, 0.3, 0.4]", "norm"),
        ("[0.1, 0.2, 0.3, 0.4]", "auto"),
    ],
)
def test_every_format(text, fmt):
    assert parse_boxes(text, SIZE, fmt) == [pytest.approx(BOX)]


def test_several_boxes():
    assert parse_boxes("{<10><20><30><40>|<0>}{<50><60><70><80>|<0>}", SIZE) == [BOX, BOX2]
    # repeated groups in one pair of braces, with angles
    assert parse_boxes("{<10><20><30><40>|<45><50><60><70><80>|<-30>}", SIZE) == [BOX, BOX2]
    assert parse_boxes("[[100,200,300,400],[500,600,700,800]]", SIZE) == [BOX, BOX2]
    assert parse_boxes("a [100, 200, 300, 400] and b [500, 600, 700, 800]", SIZE) == [BOX, BOX2]
    assert parse_boxes("<box>(100,200),(300,400)</box><box>(500,600),(700,800)</box>", SIZE) == [BOX, BOX2]
    assert parse_boxes("<bbox>[0.1,0.2,0.3,0.4]</bbox> <bbox>[0.5,0.6,0.7,0.8]</bbox>", SIZE) == [
        pytest.approx(BOX),
        pytest.approx(BOX2),
    ]


def test_angle_is_ignored_and_spaces_allowed():
    assert parse_boxes("{< 10 ><20> <30><40> | <90>}", SIZE, "geochat") == [BOX]


def test_four_numbers_are_not_taken_out_of_a_longer_group():
    assert parse_boxes("{<10><20><30><40><50><60>}", SIZE, "geochat") == []
    assert parse_boxes("{<10><20><30><40><50><60>}", SIZE) == []
    assert parse_boxes("<10><20><30><40><50><60><70><80>", SIZE, "geochat") == [BOX, BOX2]  # two boxes back to back


def test_swapped_corners_and_clamping():
    assert parse_boxes("[300, 400, 100, 200]", SIZE) == [BOX]
    assert parse_boxes("[-50, 200, 1200, 400]", SIZE) == [(0.0, 80.0, 800.0, 160.0)]
    assert parse_boxes("[900, 10, 20, 500]", (100, 100), "pixel") == [(20.0, 10.0, 100.0, 100.0)]


def test_auto_integer_list_is_our_grid_and_decimals_above_one_too():
    assert parse_boxes("[0, 0, 1, 1]", (1000, 1000)) == [(0.0, 0.0, 1.0, 1.0)]
    assert parse_boxes("[100.0, 200.0, 300.0, 400.0]", SIZE) == [BOX]
    # mixed integers and decimals all <= 1: normalised
    assert parse_boxes("[0, 0.5, 1, 1]", SIZE) == [(0.0, 200.0, 800.0, 400.0)]


def test_auto_prefers_tagged_formats_over_bare_lists():
    assert parse_boxes("<bbox>[0.1,0.2,0.3,0.4]</bbox> see also [500, 600, 700, 800]", SIZE) == [
        pytest.approx(BOX)
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "There is no storage tank in the image.",
        "[100, 200, 300]",
        "[100, 200, abc, 400]",
        "{<10><20><30>|<0>}",
        "<box>(100,200)</box>",
        "<bbox>[0.1, 0.2]</bbox>",
        "[[[[[",
        "[" + " " * 10_000 + "1",
        "<1>|" * 5_000,
        "[1e400, 2, 3, 4",
    ],
    ids=lambda t: repr(t[:30]),
)
def test_malformed_or_absent_gives_no_box(text):
    assert parse_boxes(text, SIZE) == []


def test_none_and_huge_numbers_do_not_raise():
    assert parse_boxes(None, SIZE) == []
    assert parse_boxes("[" + "9" * 400 + ", 0, 0, 0]", SIZE) == [(0.0, 0.0, 800.0, 0.0)]


def test_unknown_format_and_bad_size():
    with pytest.raises(ValueError, match="valid formats: auto, aerith, geochat"):
        parse_boxes("[1, 2, 3, 4]", SIZE, "yolo")
    with pytest.raises(ValueError, match="image_size"):
        parse_boxes("[1, 2, 3, 4]", (0, 10))
    assert set(FORMATS) == {"auto", "aerith", "geochat", "vhm", "lhrs-nova", "qwen", "pixel", "norm"}


def test_round_trip_with_grid_helpers():
    from aerith.boxes import format_box, to_grid

    box = (123.0, 45.0, 678.0, 390.0)
    parsed = parse_boxes(format_box(to_grid(box, SIZE)), SIZE)[0]
    assert parsed == pytest.approx(box, abs=SIZE[0] / 1000)
