"""Analytics: metrics with margins of error (pure), text (sentiment, themes), drivers."""
