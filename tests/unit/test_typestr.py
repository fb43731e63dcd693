"""Lenient parsing of about type strings as WEI emits them, and value checks against them."""

from __future__ import annotations

import pytest

from wei_gen.typestr import Fit, accepts_string, check_value, is_coordinate_type, parse_type


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("str", "str"),
        ("List[float]", "List[float]"),
        ("Union[List[float]str]", "Union[List[float], str]"),
        ("Optional[floatNoneType]", "Union[float, NoneType]"),
        (
            "Optional[Annotated[Union[List[float]List[List[float]]]]NoneType]",
            "Union[List[float], List[List[float]], NoneType]",
        ),
        ("[str, Path]", "Union[str, Path]"),
        ("typing.List[int]", "List[int]"),
        ("dict", "Dict"),
        ("UploadFile", "UploadFile"),
        ("", "Any"),
    ],
)
def test_parse_renders_wei_type_strings(text: str, rendered: str) -> None:
    assert str(parse_type(text)) == rendered


def test_list_of_type_strings_is_a_union() -> None:
    assert str(parse_type(["int", "str"])) == "Union[int, str]"


@pytest.mark.parametrize(
    ("text", "value", "fit"),
    [
        ("int", 3, Fit.OK),
        ("int", True, Fit.MISMATCH),
        ("int", "700", Fit.COERCIBLE),
        ("int", "tower1", Fit.MISMATCH),
        ("int", {"x": 1}, Fit.MISMATCH),
        ("float", 3, Fit.OK),
        ("float", 2.5, Fit.OK),
        ("int", 2.0, Fit.COERCIBLE),
        ("int", 2.5, Fit.MISMATCH),
        ("bool", False, Fit.OK),
        ("bool", "true", Fit.COERCIBLE),
        ("bool", "maybe", Fit.MISMATCH),
        ("str", "x", Fit.OK),
        ("str", 5, Fit.MISMATCH),
        ("List[float]", [1, 2.5], Fit.OK),
        ("List[float]", ["a"], Fit.MISMATCH),
        ("List[float]", 5, Fit.MISMATCH),
        ("Union[List[float]str]", "name", Fit.OK),
        ("Optional[floatNoneType]", None, Fit.OK),
        ("Dict", {"a": 1}, Fit.OK),
        ("Literal['a''b']", "a", Fit.OK),
        ("Literal['a''b']", "c", Fit.MISMATCH),
        ("SomeCustomClass", [1, 2], Fit.OK),
    ],
)
def test_check_value(text: str, value: object, fit: Fit) -> None:
    assert check_value(parse_type(text), value) is fit


def test_coordinate_and_string_predicates() -> None:
    assert is_coordinate_type(parse_type("List[float]"))
    assert is_coordinate_type(parse_type("Union[List[float]str]"))
    assert not is_coordinate_type(parse_type("str"))
    assert accepts_string(parse_type("Union[List[float]str]"))
    assert not accepts_string(parse_type("List[float]"))
    assert accepts_string(parse_type("UploadFile"))
