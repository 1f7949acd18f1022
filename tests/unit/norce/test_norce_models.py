from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from pydantic import ValidationError

from norce.errors import (
    NorceAuthError,
    NorceBadRequest,
    NorceNotFound,
    NorceRateLimited,
    NorceServerError,
    NorceTimeout,
    NorceTransportError,
    error_from_response,
    error_from_transport,
)
from norce.jobs import Job, JobLogEntry, JobResponse, JobStatus, LogSeverity
from norce.query import ODataPage


def test_job_response_from_doc() -> None:
    response = JobResponse.model_validate_json(
        b'{"StatusCode": 0, "Description": "ok", "JobId": "12345", "ValidationSummary":'
        b' {"NrOfItemsInTotal": 3, "NrOfValidationFailures": 1, "Messages": ["row 2: PartNo"]}}'
    )
    assert response.job_id == "12345"
    assert response.job_id_int == 12345
    assert response.validation_summary is not None
    assert response.validation_summary.nr_of_items_in_total == 3
    assert response.validation_summary.nr_of_validation_failures == 1
    assert response.validation_summary.messages == ["row 2: PartNo"]


def test_job_response_numeric_job_id_and_missing_id() -> None:
    assert JobResponse.model_validate({"JobId": 77}).job_id == "77"
    with pytest.raises(ValueError, match="without a JobId"):
        _ = JobResponse.model_validate({"Description": "nothing"}).job_id_int


def test_job_from_doc() -> None:
    job = Job.model_validate_json(
        b'{"JobId": 12345, "StatusId": 2, "StorageName": "f.json", "Totals": 1, "Inserts": 0,'
        b' "Updates": 1, "Fail": 0, "Start": "2024-05-01T10:00:00Z",'
        b' "Stop": "2024-05-01T10:00:04Z", "LastUpdated": "2024-05-01T10:00:04Z",'
        b' "IsFinished": true, "RunTime": "00:00:04", "NewField": 5}'
    )
    assert job.job_id == 12345
    assert job.status is JobStatus.SUCCEEDED
    assert job.is_final is True
    assert job.updates == 1
    assert job.stop is not None and job.start is not None
    assert (job.stop - job.start).total_seconds() == 4
    assert job.run_time == "00:00:04"
    assert job.model_extra == {"NewField": 5}


@pytest.mark.parametrize(
    ("status", "final"),
    [(1, False), (2, True), (3, True), (4, True), (5, False), (6, False)],
)
def test_final_statuses(status: int, final: bool) -> None:
    assert JobStatus(status).is_final is final
    assert Job(job_id=1, status_id=status).is_final is final


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Job.model_validate({"JobId": 1, "StatusId": 9})


def test_log_entry() -> None:
    entry = JobLogEntry.model_validate(
        {"SeverityId": 3, "Message": "Row 2 failed", "TimeStamp": "2024-05-01T10:00:00"}
    )
    assert entry.severity is LogSeverity.ERROR
    assert entry.time_stamp == datetime(2024, 5, 1, 10, 0, 0)
    assert JobLogEntry(severity_id=8, message="x").severity is None


def test_odata_page_aliases() -> None:
    page = ODataPage.model_validate_json(
        b'{"@odata.context": "ctx", "value": [{"PartNo": "1"}],'
        b' "@odata.nextLink": "http://h/q?$skip=500"}'
    )
    assert page.value == [{"PartNo": "1"}]
    assert page.next_link == "http://h/q?$skip=500"
    assert page.context == "ctx"


def _response(status: int, body: bytes = b"") -> httpx.Response:
    return httpx.Response(status, content=body, request=httpx.Request("GET", "http://h/p?secret=1"))


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, NorceBadRequest),
        (401, NorceAuthError),
        (403, NorceAuthError),
        (404, NorceNotFound),
        (409, NorceBadRequest),
        (429, NorceRateLimited),
        (500, NorceServerError),
        (503, NorceServerError),
    ],
)
def test_error_mapping(status: int, cls: type) -> None:
    error = error_from_response(_response(status, b'{"Description": "Missing AccountId"}'))
    assert type(error) is cls
    assert error.status_code == status
    assert error.description == "Missing AccountId"
    assert str(error) == f"Norce answered {status} for GET http://h/p: Missing AccountId"


def test_error_descriptions_from_oauth_and_text() -> None:
    assert error_from_response(_response(400, b'{"error": "invalid_client"}')).description == (
        "invalid_client"
    )
    assert error_from_response(_response(502, b"Bad gateway\n")).description == "Bad gateway"
    odata = _response(404, b'{"error": {"code": "404", "message": "No such SKU"}}')
    assert error_from_response(odata).description == "No such SKU"
    assert error_from_response(_response(500)).description is None
    limited = error_from_response(_response(429), retry_after=4.0)
    assert isinstance(limited, NorceRateLimited) and limited.retry_after == 4.0


def test_transport_errors() -> None:
    timeout = error_from_transport(httpx.ReadTimeout("slow"), "http://h/p?x=1")
    assert isinstance(timeout, NorceTimeout)
    refused = error_from_transport(httpx.ConnectError("refused"), "http://h/p")
    assert type(refused) is NorceTransportError
