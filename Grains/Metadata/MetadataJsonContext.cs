using System.Text.Json;
using System.Text.Json.Serialization;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Grains.Metadata;

/// <summary>
/// Compiled JSON for the record a failover writes and applies once per re-led partition (written by its grain, read by
/// every silo's image), with the same options as <see cref="MetadataImage.Json"/> (web defaults), so the bytes are
/// those the reflection-based serializer writes and reads.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(PartitionRecord))]
internal sealed partial class MetadataJsonContext : JsonSerializerContext;
