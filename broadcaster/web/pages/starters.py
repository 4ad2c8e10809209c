"""Message starters the form offers, one per status: a commander under pressure edits a sentence rather than
writing one. Built in until configurable templates ([templates] in the configuration, a later issue)
replace them; plain text, with nothing filled in for the commander."""

from __future__ import annotations

from typing import Final

from broadcaster.domain.vocabulary import Status

BUILT_IN_STARTERS: Final[dict[Status, str]] = {
    Status.INVESTIGATING: (
        "We are investigating reports of problems with [what is affected]. Some customers may see [symptom]. "
        "We will post an update as soon as we know more."
    ),
    Status.IDENTIFIED: (
        "We have identified the cause: [cause]. We are working on a fix and expect [what happens next]."
    ),
    Status.MONITORING: (
        "A fix is in place and [what is affected] is recovering. We are monitoring the results to make sure "
        "the problem does not come back."
    ),
    Status.RESOLVED: (
        "This incident is resolved: [what is affected] works normally again. We are sorry for the trouble; "
        "we will publish what happened and what we are changing."
    ),
    Status.SCHEDULED: (
        "We will carry out maintenance on [what] from [start] to [end]. During this window, [expected effect]."
    ),
    Status.IN_PROGRESS: "Scheduled maintenance is in progress. [Expected effect] until it ends.",
    Status.VERIFYING: "The maintenance work is done and we are verifying that everything works as expected.",
    Status.COMPLETED: "The scheduled maintenance is complete and every service works normally.",
}
"""The starter for each status, named after it."""
