from core.errors import Code


class MeasuresCode(Code):
    INVALID_VERSION = "INVALID_VERSION"  # a blank or malformed title, number, text hash or period
    # a successor takes over forward only: from tomorrow (Asia/Shanghai) at the earliest, and after
    # the latest version entered
    EFFECTIVE_IN_PAST = "EFFECTIVE_IN_PAST"
    VALIDITY_OUT_OF_RANGE = "VALIDITY_OUT_OF_RANGE"  # points are valid 1 to 10 years (art. 22)
