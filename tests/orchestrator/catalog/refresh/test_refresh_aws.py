"""AWS refresh through boto3: Pricing via botocore's Stubber and a Pricing fake, spot via moto."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.stub import ANY, Stubber

from orchestrator.catalog.price_checks import PricesRejected
from orchestrator.catalog.refresh import aws, refresh_catalog
from orchestrator.catalog.store import read_offers
from orchestrator.errors import CatalogError
from tests.fakes.aws_pricing import AMZ_JSON, FakePricing, aws_error, price_list_item

TODAY = dt.date(2026, 5, 20)
P5 = price_list_item("p5.48xlarge", "us-east-1", gpus=8, vcpus=192, memory_gib=2048,
                     on_demand_usd=55.04, reserved_1y_no_upfront_usd=37.39)
G5 = price_list_item("g5.xlarge", "us-east-1", gpus=1, vcpus=4, memory_gib=16, on_demand_usd=1.006)
G5G = price_list_item("g5g.xlarge", "us-east-1", gpus=1, vcpus=4, memory_gib=8, on_demand_usd=0.42)  # Graviton + T4G
P5E = price_list_item("p5e.48xlarge", "us-east-1", gpus=8, vcpus=192, memory_gib=2048, on_demand_usd=0.0)
P5_OREGON = price_list_item("p5.48xlarge", "us-west-2", gpus=8, vcpus=192, memory_gib=2048, on_demand_usd=55.04)
SPOT = {"p5.48xlarge": 21.7, "g5.xlarge": 0.45}

US_EAST_1_FILTERS = [
    {"Type": "TERM_MATCH", "Field": field, "Value": value}
    for field, value in [
        ("instanceFamily", "GPU instance"), ("operatingSystem", "Linux"), ("tenancy", "Shared"),
        ("preInstalledSw", "NA"), ("capacitystatus", "Used"), ("locationType", "AWS Region"),
        ("regionCode", "us-east-1"),
    ]
]


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch, tmp_path):
    """Dummy keys, and none of this machine's AWS config, so nothing can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "GPUFLEET_AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def pricing_requests(fake: FakePricing) -> list:
    return [r for r in fake.requests if r.headers.get("X-Amz-Target", "").startswith("AWSPriceListService.")]


def test_pricing_documents_become_offers_with_the_1yr_no_upfront_standard_reserved_price():
    pricing = boto3.client("pricing", region_name="us-east-1")
    stubber = Stubber(pricing)
    query = {"ServiceCode": "AmazonEC2", "Filters": US_EAST_1_FILTERS, "FormatVersion": "aws_v1"}
    page_1 = {"FormatVersion": "aws_v1", "PriceList": [P5, G5G], "NextToken": "t1"}
    page_2 = {"FormatVersion": "aws_v1", "PriceList": [G5, P5E]}
    stubber.add_response("get_products", page_1, query)
    stubber.add_response("get_products", page_2, {**query, "NextToken": "t1"})

    with FakePricing([]).serve() as moto_url, stubber:
        offers = aws.fetch_offers(["us-east-1"], as_of=TODAY, endpoint_url=moto_url, pricing_client=pricing)

    stubber.assert_no_pending_responses()
    by_type = {offer.instance_type: offer for offer in offers}
    # g5g carries T4G (not served on); p5e has no on-demand market and moto lists no spot for it.
    assert set(by_type) == {"p5.48xlarge", "g5.xlarge"}
    p5 = by_type["p5.48xlarge"]
    assert (p5.provider, p5.region, p5.gpu, p5.gpu_count, p5.gpu_memory_gb) == ("aws", "us-east-1", "H100", 8, 80)
    assert (p5.vcpus, p5.memory_gb, p5.on_demand_per_hour) == (192, 2048, 55.04)
    assert p5.reserved_per_hour == 37.39  # not convertible, partial upfront or 3-year
    assert (by_type["g5.xlarge"].gpu, by_type["g5.xlarge"].reserved_per_hour) == ("A10G", None)
    assert {offer.source for offer in offers} == {"aws-pricing-api"}


def test_spot_is_the_median_over_zones_of_each_zones_latest_linux_price():
    ec2 = boto3.client("ec2", region_name="us-east-1")
    now = dt.datetime.now(dt.timezone.utc)

    def record(instance_type, zone, price, hours_ago, description="Linux/UNIX"):
        return {"InstanceType": instance_type, "AvailabilityZone": zone, "SpotPrice": str(price),
                "ProductDescription": description, "Timestamp": now - dt.timedelta(hours=hours_ago)}

    history = [
        record("p5.48xlarge", "us-east-1a", 30.0, 2), record("p5.48xlarge", "us-east-1a", 20.0, 1),
        record("p5.48xlarge", "us-east-1b", 25.0, 3), record("p5.48xlarge", "us-east-1c", 40.0, 1),
        record("p5.48xlarge", "us-east-1d", 1.0, 1, description="Windows"),
        record("g5.xlarge", "us-east-1b", 0.4, 5),
    ]
    stubber = Stubber(ec2)
    stubber.add_response(
        "describe_spot_price_history", {"SpotPriceHistory": history},
        {"InstanceTypes": ["g5.xlarge", "p5.48xlarge"], "ProductDescriptions": ["Linux/UNIX"], "StartTime": ANY},
    )
    with stubber:
        prices = aws.spot_prices(ec2, ["g5.xlarge", "p5.48xlarge"])

    assert prices == {"p5.48xlarge": 25.0, "g5.xlarge": 0.4}  # median of 20 (1a's latest), 25, 40


def test_refresh_through_the_endpoint_variable_writes_the_catalog_with_spot_from_ec2(monkeypatch, tmp_path):
    fake = FakePricing([P5, G5, G5G, P5_OREGON], spot_usd=SPOT)
    with fake.serve() as url:
        monkeypatch.setenv("GPUFLEET_AWS_ENDPOINT_URL", url)
        result = refresh_catalog("aws", ["us-east-1"], catalog_dir=tmp_path)

    assert (result.provider, result.rows, result.path) == ("aws", 2, tmp_path / "aws.csv")
    refreshed = [o for o in read_offers(result.path) if o.region == "us-east-1"]
    assert {o.instance_type: o.spot_per_hour for o in refreshed} == SPOT
    assert len(pricing_requests(fake)) == 2  # 3 matching products, 2 a page


def test_motos_made_up_spot_price_is_rejected_and_nothing_is_written(tmp_path):
    # moto prices every spot record at $0.00001: a price no GPU has, as a hostile API might answer.
    with FakePricing([P5, G5]).serve() as url, pytest.raises(PricesRejected) as caught:
        refresh_catalog("aws", ["us-east-1"], catalog_dir=tmp_path, endpoint_url=url)

    assert {(a.instance_type, a.field) for a in caught.value.anomalies} == {
        ("p5.48xlarge", "spot_per_hour"), ("g5.xlarge", "spot_per_hour")}
    assert "allowed: $0.01 to $100 per GPU-hour" in str(caught.value)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spot", [float("nan"), -1.0, 0.0])  # the Azure tests cover every other kind
def test_a_spot_price_that_is_not_a_price_rejects_the_refresh(tmp_path, spot):
    with FakePricing([G5], spot_usd={"g5.xlarge": spot}).serve() as url, pytest.raises(PricesRejected) as caught:
        refresh_catalog("aws", ["us-east-1"], catalog_dir=tmp_path, endpoint_url=url)

    assert [(a.instance_type, a.field) for a in caught.value.anomalies] == [("g5.xlarge", "spot_per_hour")]
    assert not (tmp_path / "aws.csv").exists()


def test_pricing_paging_that_comes_back_to_an_earlier_token_stops(tmp_path):
    pricing = boto3.client("pricing", region_name="us-east-1")
    stubber = Stubber(pricing)
    query = {"ServiceCode": "AmazonEC2", "Filters": US_EAST_1_FILTERS, "FormatVersion": "aws_v1"}
    for token, following in ((None, "a"), ("a", "b"), ("b", "a")):  # a -> b -> a -> b ... for ever
        page = {"FormatVersion": "aws_v1", "PriceList": [G5], "NextToken": following}
        stubber.add_response("get_products", page, {**query, **({"NextToken": token} if token else {})})

    with FakePricing([], spot_usd=SPOT).serve() as url, stubber, pytest.raises(CatalogError, match="paging loops"):
        aws.fetch_offers(["us-east-1"], as_of=TODAY, endpoint_url=url, pricing_client=pricing)


def test_throttled_pricing_calls_are_retried(tmp_path):
    fake = FakePricing([G5], spot_usd=SPOT)
    fake.fail_next(400, aws_error("ThrottlingException", "Rate exceeded"), content_type=AMZ_JSON)
    with fake.serve() as url:
        result = refresh_catalog("aws", ["us-east-1"], catalog_dir=tmp_path, endpoint_url=url)

    assert result.rows == 1
    assert len(pricing_requests(fake)) == 2


def test_access_denied_names_the_permissions_to_grant(tmp_path):
    fake = FakePricing([G5])
    fake.fail_next(400, aws_error("AccessDeniedException", "User is not authorized"), content_type=AMZ_JSON)
    with fake.serve() as url, pytest.raises(CatalogError) as caught:
        refresh_catalog("aws", ["us-east-1"], catalog_dir=tmp_path, endpoint_url=url)

    assert "pricing:GetProducts and ec2:DescribeSpotPriceHistory" in str(caught.value)
    assert "To fix:" in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)
    assert not (tmp_path / "aws.csv").exists()


def test_missing_credentials_say_how_to_provide_them(monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with FakePricing([G5]).serve() as url, pytest.raises(CatalogError) as caught:
        refresh_catalog("aws", ["us-east-1"], catalog_dir=tmp_path, endpoint_url=url)

    assert "AWS_PROFILE" in str(caught.value)
    assert isinstance(caught.value.__cause__, NoCredentialsError)
