"""The `history_prices` section: defaults off, validated with every other problem, the key masked everywhere."""

from __future__ import annotations

import argparse
import json

import pytest

from core.settings import HistoryPricesSettings, load_settings
from deployments.commands import config
from tests.unit.core.test_settings import load_error, problems_of


def test_off_by_default() -> None:
    settings = load_settings({}).history_prices
    assert settings == HistoryPricesSettings()
    assert (settings.provider, settings.enabled, settings.candle, settings.candle_s) == ("none", False, "15m", 900)


def test_birdeye_from_the_environment() -> None:
    settings = load_settings({"OOF_HISTORY_PRICES__PROVIDER": "birdeye", "OOF_HISTORY_PRICES__API_KEY": "k",
                              "OOF_HISTORY_PRICES__CANDLE": "1H", "OOF_HISTORY_PRICES__MARGIN_S": "0"}).history_prices
    assert settings.enabled and settings.candle_s == 3_600 and settings.margin_s == 0
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "k"


def test_every_problem_at_once_and_never_the_key() -> None:
    error = load_error({"OOF_HISTORY_PRICES__PROVIDER": "birdeye", "OOF_HISTORY_PRICES__BASE_URL": "ftp://bird",
                        "OOF_HISTORY_PRICES__API_KEY": "bird-hunter2", "OOF_DATABASE__POOL_MAX": "x"})
    problems = problems_of(error)
    assert set(problems) == {"history_prices.base_url", "database.pool_max"}
    assert "http://" in problems["history_prices.base_url"] and "hunter2" not in str(error)

    short = problems_of(load_error({"OOF_HISTORY_PRICES__CANDLE": "1m"}))  # 1m candles would crowd BAD_ROUTE
    assert "15m" in short["history_prices.candle"]
    missing = problems_of(load_error({"OOF_HISTORY_PRICES__PROVIDER": "birdeye"}))
    assert "api_key is not set" in missing["history_prices"]


def test_config_check_masks_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="oof config")
    config.add_parser(parser)
    args = parser.parse_args(["check", "--json"])
    environ = {"OOF_HISTORY_PRICES__PROVIDER": "birdeye", "OOF_HISTORY_PRICES__API_KEY": "bird-hunter2"}
    code = args.handler(args, environ)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "hunter2" not in out
    assert json.loads(out)["history_prices"]["api_key"] == "**********"
