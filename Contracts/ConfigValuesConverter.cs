using System.Text.Json;
using System.Text.Json.Serialization;

namespace OrleansMeta.Contracts;

/// <summary>
/// Topic configs as a JSON object of strings. Kafka's tools send numbers and booleans unquoted
/// (<c>"retention.ms": 1000</c>), so those are accepted and kept as the text they were written as; objects and arrays
/// are refused with a sentence that says to quote the value, and a key given twice is refused.
/// </summary>
public sealed class ConfigValuesConverter : JsonConverter<IReadOnlyDictionary<string, string?>>
{
    /// <inheritdoc/>
    public override IReadOnlyDictionary<string, string?> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("Configs must be a JSON object of names to values, such as {\"retention.ms\": \"86400000\"}.");
        }

        var configs = new Dictionary<string, string?>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var key = reader.GetString()!;
            reader.Read();
            string? value = reader.TokenType switch
            {
                JsonTokenType.String => reader.GetString(),
                JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(reader.HasValueSequence ? System.Buffers.BuffersExtensions.ToArray(reader.ValueSequence) : reader.ValueSpan),
                JsonTokenType.True => "true",
                JsonTokenType.False => "false",
                JsonTokenType.Null => null,
                _ => throw new JsonException(
                    $"Config '{key}' has a JSON {(reader.TokenType == JsonTokenType.StartArray ? "array" : "object")} as its value; " +
                    "config values are strings (numbers and booleans are accepted as written), so quote the value."),
            };
            if (!configs.TryAdd(key, value))
            {
                throw new JsonException($"Config '{key}' is given twice; give each config once.");
            }
        }

        return configs;
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, IReadOnlyDictionary<string, string?> value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        foreach (var (key, config) in value)
        {
            writer.WriteString(key, config);
        }

        writer.WriteEndObject();
    }
}
