"""Typed application keys of the costs service, shared by the app factory and the handlers."""

from __future__ import annotations

from aiohttp import web

from costs.budgets import Budgets
from costs.cache import CostAwareCache
from costs.importer import Importer
from costs.optimization import Thresholds
from costs.reports import Reports
from costs.settings import CostsSettings

SETTINGS_KEY = web.AppKey("costs_settings", CostsSettings)
IMPORTER = web.AppKey("importer", Importer)
REPORTS = web.AppKey("reports", Reports)
BUDGETS = web.AppKey("budgets", Budgets)
THRESHOLDS = web.AppKey("thresholds", Thresholds)
COST_CACHE = web.AppKey("cost_cache", CostAwareCache)
