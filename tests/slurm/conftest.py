"""Slurm tests leave no job behind: whatever a test submitted is cancelled when it ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from offload.slurm import submit as submitting


@pytest.fixture(autouse=True)
def cancel_leftover_jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    submitted: list[str] = []
    real_submit = submitting.submit

    def recording(request: Any) -> list[str]:
        ids = real_submit(request)
        submitted.extend({job_id.split("_")[0] for job_id in ids})
        return ids

    monkeypatch.setattr(submitting, "submit", recording)
    yield
    if submitted:
        try:
            submitting.cancel_ids(sorted(set(submitted)))
        except Exception:  # the cluster may be down after a fault test; nothing to clean then
            pass
