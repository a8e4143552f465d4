from datetime import date

from itsm_change_sdk.model import Effect, EffectKind


def test_publish(platform, double):
    alice = double.add_person("Alice", "alice@example.com")
    e = Effect(key="chg:p:training:m:" + alice.id, kind=EffectKind.TRAINING, platform="servicenow",
               program="p", title="Portal basics", body="Learn it", channel="task",
               recipient=alice, due=date(2025, 3, 10))
    results = platform.itsm_change_publish_training([e], {})
    print(results)
    assert results[0].ok
    print(double.records(EffectKind.TRAINING))
    assert platform.itsm_change_find_effects(EffectKind.TRAINING, [e.key])[0].key == e.key
