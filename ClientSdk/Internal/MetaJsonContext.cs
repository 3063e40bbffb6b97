using System.Text.Json;
using System.Text.Json.Serialization;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Internal;

/// <summary>Source-generated (no reflection, trim-safe) JSON for the wire records, with the web defaults the server uses.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(BrokerRegistrationRequest))]
[JsonSerializable(typeof(BrokerRegistrationResponse))]
[JsonSerializable(typeof(BrokerUnregistrationResponse))]
[JsonSerializable(typeof(BrokerHeartbeatRequest))]
[JsonSerializable(typeof(BrokerHeartbeatResponse))]
[JsonSerializable(typeof(BrokersResponse))]
[JsonSerializable(typeof(CreateTopicRequest))]
[JsonSerializable(typeof(TopicsResponse))]
[JsonSerializable(typeof(TopicResponse))]
[JsonSerializable(typeof(DeleteTopicResponse))]
[JsonSerializable(typeof(AddPartitionsRequest))]
[JsonSerializable(typeof(AlterConfigsRequest))]
[JsonSerializable(typeof(AlterPartitionRequest))]
[JsonSerializable(typeof(PartitionResponse))]
[JsonSerializable(typeof(ElectionRequest))]
[JsonSerializable(typeof(ElectionResponse))]
[JsonSerializable(typeof(MetadataResponse))]
[JsonSerializable(typeof(MetadataDeltaResponse))]
[JsonSerializable(typeof(TopicConfigsResponse))]
[JsonSerializable(typeof(ClusterInfo))]
[JsonSerializable(typeof(GroupHeartbeatRequest))]
[JsonSerializable(typeof(GroupHeartbeatResponse))]
[JsonSerializable(typeof(GroupDescription))]
[JsonSerializable(typeof(DeleteGroupResponse))]
[JsonSerializable(typeof(CommitOffsetsRequest))]
[JsonSerializable(typeof(CommitOffsetsResponse))]
[JsonSerializable(typeof(GroupOffsetsResponse))]
[JsonSerializable(typeof(DeleteGroupOffsetsResponse))]
[JsonSerializable(typeof(ResetOffsetsRequest))]
[JsonSerializable(typeof(GroupsResponse))]
[JsonSerializable(typeof(LogOffsetsReport))]
[JsonSerializable(typeof(LogOffsetsReportResponse))]
[JsonSerializable(typeof(GroupCoordinatorResponse))]
[JsonSerializable(typeof(WatchEvent))]
[JsonSerializable(typeof(WatchCutOff))]
internal sealed partial class MetaJsonContext : JsonSerializerContext;
