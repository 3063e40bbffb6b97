using System.Text.Json;
using System.Text.Json.Serialization;

namespace OrleansMeta.Grains;

/// <summary>
/// Compiled JSON for the grain states written on the hot paths: a partition's on every leader and ISR change (tens of
/// thousands in a failover, each also read once when its grain activates), a topic's on every config change. Generated
/// with the state serializer's options (web defaults), so the stored bytes are those reflection writes and reads.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(PartitionGrainState))]
[JsonSerializable(typeof(TopicGrainState))]
internal sealed partial class GrainStateJsonContext : JsonSerializerContext;
