"""The monthly data report (数据月报) of each jurisdiction."""
