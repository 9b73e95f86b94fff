"""URL checks: the same answers whether a URL is seen for the first time or again (they are remembered)."""

from __future__ import annotations

import pytest

from aioface import InvalidRequestError
from aioface._net import check_http_url

BAD = [
    "https://example.com/a b.png",
    "https://example.com/\x00.png",
    "https://example.com/\x7f.png",
    "https://example.com/\u200b.png",  # a format character
    "https://example.com/\u3000.png",  # an ideographic space
    "ftp://example.com/a.png",
    "https://example.com:0/a.png",
    "https://[::1/a.png",
]


@pytest.mark.parametrize("url", BAD)
def test_a_bad_url_is_refused_every_time(url: str) -> None:
    for _ in range(3):
        with pytest.raises(InvalidRequestError):
            check_http_url(url, param="image_url")


def test_a_good_url_is_accepted_every_time_and_a_str_subclass_too() -> None:
    class Url(str):
        def __hash__(self) -> int:
            return 0

    for url in ("https://cdn.example.com/f.png", "https://bücher.example/f.png", Url("https://x.example/f.png")):
        for _ in range(3):
            assert check_http_url(url) == url
    with pytest.raises(InvalidRequestError):
        check_http_url(Url("https://x.example/a b.png"))
