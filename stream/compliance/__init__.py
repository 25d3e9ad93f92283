"""The compliance engine: validated averages and emission-limit evaluation as a DAHS does it.

The chain (EN 17255-1, EN 14181, IED 2010/75/EU): field-level readings with status →
short-term averages (STA, half-hour or hour, valid values in normal operation only) → QAL2
calibration ``a + b·x`` → unit conversion, dry basis, standard T/p, O2 normalisation →
validated STA (minus the confidence interval) → daily, monthly and yearly averages from the
validated STA → regime criteria (large combustion plant or waste incineration).

One concept per module; every rule cites its source in ``shared/docs/emission-rules.md``.
"""
