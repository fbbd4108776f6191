"""The schema of regression rules: a suite's `checks:` section and `vdeval check --rules FILE`.

Pure data (pydantic), below both the suite (which validates `checks:` before a run) and the check
command (which evaluates the rules on results): the suite never imports the check command.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vdeval.errors import VdevalError, closest

ALPHA = 0.05


class RulesError(VdevalError):
    """A rules file or suite `checks:` section that does not validate against the results."""


class Rule(BaseModel):
    # a bound of NaN or infinity compares false (or true) with everything: a rule that cannot fail
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    metric: str
    generator: str | None = None
    min: float | None = None
    max: float | None = None
    max_regression: float | None = Field(None, ge=0)
    not_significantly_worse: bool = False
    compare_to: str | None = None  # a generator of the same run, instead of the baseline run
    alpha: float = Field(ALPHA, gt=0, lt=1)
    name: str | None = None  # label in output and JUnit; default built from the rule

    @model_validator(mode="after")
    def _has_condition(self):
        if self.min is None and self.max is None and self.max_regression is None and not self.not_significantly_worse:
            raise ValueError("a rule needs at least one of min, max, max_regression, not_significantly_worse")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.compare_to is not None and not self.compares:
            raise ValueError("compare_to needs max_regression or not_significantly_worse")
        if self.compare_to is not None and self.compare_to == self.generator:
            raise ValueError(f"compare_to names the rule's own generator {self.generator!r}")
        return self

    @property
    def compares(self) -> bool:
        """Whether the rule compares with something (the baseline run, or compare_to)."""
        return self.max_regression is not None or self.not_significantly_worse

    @property
    def needs_baseline(self) -> bool:
        """Whether the rule needs --baseline RUN (it compares, and not within the run)."""
        return self.compares and self.compare_to is None

    def conditions(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"min {self.min:g}")
        if self.max is not None:
            parts.append(f"max {self.max:g}")
        if self.max_regression is not None:
            parts.append(f"max_regression {self.max_regression:.0%}")
        if self.not_significantly_worse:
            parts.append("not significantly worse")
        if self.compare_to is not None:
            parts.append(f"than {self.compare_to}")
        return ", ".join(parts)


def parse_rules(data, source: str) -> list[Rule]:
    """Validate raw rule data; the first problem becomes one RulesError with the closest valid key."""
    if isinstance(data, dict):
        if "checks" not in data:
            guess = closest("checks", data) if data else None
            raise RulesError(f"{source}: expected a list of rules or a `checks:` list",
                             f"found keys {sorted(map(str, data))}" + (f"; did you mean 'checks' for {guess!r}?"
                                                                          if guess else ""))
        data = data["checks"]
    if not isinstance(data, list) or not data:
        raise RulesError(f"{source}: no rules", "give a non-empty list of rules (see suites/checks-example.yaml)")
    rules = []
    for i, raw in enumerate(data, 1):
        if not isinstance(raw, dict):
            raise RulesError(f"{source}: rule {i} is {type(raw).__name__}, not a mapping",
                             "write each rule as {metric: NAME, max: 0.1, ...}")
        try:
            rules.append(Rule(**{str(k): v for k, v in raw.items()}))
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err.get("loc", ()))
            if err.get("type") == "extra_forbidden":
                guess = closest(loc, Rule.model_fields)
                hint = f"did you mean {guess!r}?" if guess else f"valid keys: {', '.join(Rule.model_fields)}"
                raise RulesError(f"{source}: rule {i}: unknown key {loc!r}", hint) from None
            where = f" {loc}:" if loc else ""
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            raise RulesError(f"{source}: rule {i}:{where} {msg}") from None
    return rules
