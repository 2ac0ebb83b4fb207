"""Shape checks for the code systems the registry stores (STYLE §13: codes are data).

Formats: ICD-10-CM (CMS/NCHS code structure: a letter, a digit, a digit or letter, then an
optional dot and up to 4 characters); WHO ATC (levels 1-5: A, A00, A00A, A00AA, A00AA00).
"""

import re

ICD10CM_PATTERN = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")
ATC_PATTERN = re.compile(r"^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$")


def normalise_icd10(code: str) -> str:
    code = code.strip().upper()
    if "." not in code and len(code) > 3:
        code = f"{code[:3]}.{code[3:]}"
    return code


def is_icd10cm(code: str) -> bool:
    return bool(ICD10CM_PATTERN.match(code.strip().upper()))


def is_atc(code: str) -> bool:
    return bool(ATC_PATTERN.match(code.strip().upper()))
