"""A synthetic jurisdiction with known truth (issue 2).

``build_world`` makes the people, units and quotas of a county or a province;
``problems`` injects every finding of the catalogue the way it happens in life;
``sources`` projects the world onto the four offices' systems, period by period;
``oracle`` is a deliberately plain, separate reading of OUTPUTS.md that computes the
expected findings and roster from what the systems serve.
"""
