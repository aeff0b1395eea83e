# Minimal stacks as cdktf synthesizes them (Terraform JSON), one per cloud, that pass every
# terraform rule. Each rule's tests break one thing with json.patch.
package terraform.test_fixtures

import rego.v1

aws := {
	"terraform": {"required_providers": {"aws": {"source": "aws", "version": "5.84.0"}}},
	"provider": {"aws": [{
		"region": "us-east-1",
		"alias": "us-east-1",
		"default_tags": [{"tags": {"env": "hybrid", "owner": "ml-platform", "cost-center": "cc-4711"}}],
	}]},
	"resource": {
		"aws_launch_template": {"h100": {
			"name": "hybrid-aws-use1-h100",
			"metadata_options": {"http_tokens": "required", "http_put_response_hop_limit": 2},
			"block_device_mappings": [{"device_name": "/dev/xvda", "ebs": {"volume_size": 500, "volume_type": "gp3", "encrypted": true}}],
			"network_interfaces": [{"associate_public_ip_address": false}],
		}},
		"aws_eks_node_group": {"h100": {
			"provider": "aws.us-east-1",
			"cluster_name": "eks-prod-use1",
			"node_group_name": "aws-use1-h100",
			"instance_types": ["p5.48xlarge"],
			"ami_type": "AL2023_x86_64_NVIDIA",
			"capacity_type": "ON_DEMAND",
			"scaling_config": {"min_size": 0, "desired_size": 0, "max_size": 4},
			"launch_template": {"id": "${aws_launch_template.h100.id}", "version": "${aws_launch_template.h100.latest_version}"},
			"labels": {"gpufleet.io/pool": "aws-use1-h100"},
			"tags": {"pool": "aws-use1-h100"},
		}},
		"aws_iam_role": {"nodes": {
			"name": "hybrid-gpu-nodes",
			"assume_role_policy": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`,
		}},
		"aws_iam_policy": {"weights": {
			"name": "hybrid-read-weights",
			"policy": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::acme-models","arn:aws:s3:::acme-models/*"]}]}`,
		}},
	},
}

gcp := {
	"terraform": {"required_providers": {"google": {"source": "hashicorp/google", "version": "~> 6.12.0"}}},
	"provider": {"google": [{"project": "acme-ml", "region": "us-central1"}]},
	"resource": {
		"google_container_node_pool": {"h100": {
			"name": "gcp-usc1-h100",
			"cluster": "gke-prod-usc1",
			"location": "us-central1",
			"node_locations": ["us-central1-a"],
			"autoscaling": {"min_node_count": 0, "max_node_count": 2},
			"network_config": {"enable_private_nodes": true},
			"node_config": {
				"machine_type": "a3-highgpu-8g",
				"spot": false,
				"guest_accelerator": [{"type": "nvidia-h100-80gb", "count": 8}],
				"labels": {"gpufleet.io/pool": "gcp-usc1-h100"},
				"resource_labels": {"env": "hybrid", "pool": "gcp-usc1-h100", "cost-center": "cc-4711", "owner": "ml-platform"},
			},
		}},
		"google_project_iam_member": {"nodes_read_weights": {
			"project": "acme-ml",
			"role": "roles/storage.objectViewer",
			"member": "serviceAccount:gpu-nodes@acme-ml.iam.gserviceaccount.com",
		}},
	},
}

azure := {
	"terraform": {"required_providers": {"azurerm": {"source": "azurerm", "version": "4.14.0"}}},
	"provider": {"azurerm": [{"features": [{}]}]},
	"resource": {
		"azurerm_kubernetes_cluster_node_pool": {"a100": {
			"name": "a100",
			"kubernetes_cluster_id": "${data.azurerm_kubernetes_cluster.aks.id}",
			"vm_size": "Standard_NC24ads_A100_v4",
			"priority": "Regular",
			"auto_scaling_enabled": true,
			"min_count": 0,
			"max_count": 8,
			"host_encryption_enabled": true,
			"node_public_ip_enabled": false,
			"node_labels": {"gpufleet.io/pool": "az-eastus-a100"},
			"tags": {"env": "hybrid", "pool": "az-eastus-a100", "cost-center": "cc-4711", "owner": "ml-platform"},
		}},
		"azurerm_role_definition": {"nodes": {
			"name": "gpu-nodes",
			"scope": "/subscriptions/0000",
			"permissions": [{"actions": ["Microsoft.Storage/storageAccounts/blobServices/containers/read"]}],
		}},
	},
}

stacks := [aws, gcp, azure]

subjects(violations) := {v.subject | some v in violations}
