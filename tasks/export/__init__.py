"""Exports of a contract to trading platforms: TradingView Pine v6 (``pine``); each with diagnostics for
what the target cannot express exactly."""
