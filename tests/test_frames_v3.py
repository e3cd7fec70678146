"""linq_nb.frames on v3: v3's columns (an api_version column, no counters), its UUID ids in the attempt log."""

from __future__ import annotations

import pandas as pd
import pytest

from linq_nb.frames import (
    V3_SUBSCRIPTION_COLUMNS,
    deliveries_frame,
    health,
    style_subscriptions,
    subscription_marks,
    subscriptions_frame,
)
from linq_nb.models import WebhookSubscription, WebhookSubscriptionV3

A = "b2c3d4e5-f6a7-8901-bcde-f23456789012"
B = "c3d4e5f6-a7b8-9012-cdef-345678901234"


def v3_obj(sub_id: str = A, **over: object) -> dict[str, object]:
    obj: dict[str, object] = {
        "id": sub_id, "target_url": f"https://example.com/{sub_id[:4]}", "subscribed_events": ["message.received"],
        "is_active": True, "phone_numbers": None, "routing_key_header": None, "routing_id_header": None,
        "created_at": "2026-12-01T10:00:00.000Z", "updated_at": "2026-12-01T10:00:00.000Z",
    }
    obj.update(over)
    return obj


V2_OBJ = {"id": 1, "webhook_url": "https://example.com/v2", "version": 2, "events": ["message.received"],
          "active": True, "secret_configured": True, "delivery_attempts": 0, "last_delivered_at": None,
          "created_at": "2026-12-01T10:00:00.000Z", "updated_at": "2026-12-01T10:00:00.000Z"}


def dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {name: str(df[name].dtype) for name in df.columns}


def test_v3_columns_have_a_version_and_no_counters() -> None:
    subs = [WebhookSubscriptionV3.from_api(v3_obj(A, phone_numbers=["+14155551234"], signing_secret="whsec_x")),
            WebhookSubscriptionV3.from_api(v3_obj(B, is_active=False))]
    df = subscriptions_frame(subs)
    assert tuple(df.columns) == V3_SUBSCRIPTION_COLUMNS
    assert "delivery_attempts" not in df.columns and "last_delivered_at" not in df.columns
    assert "signing_secret" not in df.columns and "whsec_x" not in df.to_string()
    assert df["api_version"].tolist() == ["v3", "v3"]
    assert df["id"].tolist() == [A, B]
    assert df["is_active"].tolist() == [True, False] and str(df["is_active"].dtype) == "bool"
    assert df["phone_numbers"].tolist() == [["+14155551234"], None]
    assert df["subscribed_events"].tolist() == [["message.received"]] * 2
    assert dtypes(df)["created_at"] == "datetime64[ns, UTC]"


def test_objects_json_and_list_body_give_the_same_frame() -> None:
    objs = [v3_obj(A), v3_obj(B)]
    from_models = subscriptions_frame([WebhookSubscriptionV3.from_api(o) for o in objs])
    pd.testing.assert_frame_equal(subscriptions_frame(objs), from_models)
    pd.testing.assert_frame_equal(subscriptions_frame({"subscriptions": objs}), from_models)
    pd.testing.assert_frame_equal(subscriptions_frame(WebhookSubscriptionV3.from_api(objs[0])), from_models.iloc[:1])


def test_empty_v3_frame_has_the_same_columns_and_dtypes() -> None:
    empty = subscriptions_frame([], api="v3")
    assert empty.empty and tuple(empty.columns) == V3_SUBSCRIPTION_COLUMNS
    assert dtypes(empty) == dtypes(subscriptions_frame([v3_obj()]))
    assert tuple(subscriptions_frame([]).columns)[:3] == ("id", "webhook_url", "version")  # v2 stays the default


def test_v2_and_v3_together_are_refused() -> None:
    with pytest.raises(TypeError, match="one frame per version"):
        subscriptions_frame([v3_obj(), V2_OBJ])
    with pytest.raises(TypeError, match="one frame per version"):
        subscriptions_frame([WebhookSubscriptionV3.from_api(v3_obj()), WebhookSubscription.from_api(V2_OBJ)])


def test_marks_and_style_on_a_v3_frame() -> None:
    df = subscriptions_frame([v3_obj(A), v3_obj(B, is_active=False)])
    assert subscription_marks(df).tolist() == ["", "inactive"]  # no counters: never "never delivered"
    html = style_subscriptions(df).to_html()
    assert "message.received" in html


def test_deliveries_frame_with_v3_uuids_and_v2_ints() -> None:
    row = {"event_id": "e", "event_type": "message.received", "attempt": 1, "status_code": 200, "error": None,
           "ok": True, "started_at": "2026-12-01T10:00:00.000Z", "duration_ms": 1.5}
    mixed = deliveries_frame([{**row, "subscription_id": 2}, {**row, "subscription_id": A}])
    assert mixed["subscription_id"].tolist() == ["2", A]
    only_v2 = deliveries_frame({"deliveries": [{**row, "subscription_id": 2}]})
    assert str(only_v2["subscription_id"].dtype) == "Int64"


def test_health_says_v3_has_no_counters() -> None:
    with pytest.raises(TypeError, match="v3 subscriptions have no delivery counters"):
        health([(pd.Timestamp("2026-12-01T10:00:00Z").to_pydatetime(), [WebhookSubscriptionV3.from_api(v3_obj())])])
