from tests.conftest import approved, person


async def test_service_answers(api):
    data = await api.data("{ __schema { queryType { name } } service { name } }")
    assert data["__schema"]["queryType"]["name"] == "Query"


async def test_person_signs_up_and_sees_themselves(api):
    someone = await person(api)
    me = await api.data("{ me { id displayName email roles { role status } } }", token=someone.token)
    assert me["me"]["id"] == someone.account_id
    assert me["me"]["roles"] == [{"role": "INDIVIDUAL", "status": "ACTIVE"}]


async def test_operator_approved(api):
    operator = await approved(api, "APP_OPERATOR")
    assert {"role": "APP_OPERATOR", "status": "ACTIVE"} in operator.roles
