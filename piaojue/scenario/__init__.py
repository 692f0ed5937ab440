"""The Fuyu 2024 scenario (孚玉镇 2024 年民生实事项目票决), replayed through the services' HTTP APIs.

One module per stage of the year (intake, ballot, outcome, supervision, rating, scoring), each
reading what the earlier ones left on the shared ``Year`` and adding its part of the outcome;
``fuyu`` holds the town's data, ``client`` the HTTP client and the ``Year``."""

from piaojue.scenario.client import AlreadyPlayed, ScenarioError
from piaojue.scenario.fuyu import COUNTY, TOWN, YEAR
from piaojue.scenario.run import run

__all__ = ["COUNTY", "TOWN", "YEAR", "AlreadyPlayed", "ScenarioError", "run"]
