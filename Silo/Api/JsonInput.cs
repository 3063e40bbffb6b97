using System.Collections;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Strict JSON bodies: a field the request does not have, or a field given twice, is refused rather than ignored (a
/// typo such as <c>partitonz</c> must not silently create a one-partition topic), and missing required fields are
/// refused rather than read as zero. Failures become sentences that name the field by its JSON path and, for type
/// errors, the type expected.
/// </summary>
internal static partial class JsonInput
{
    public static void Configure(JsonSerializerOptions options)
    {
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.AllowDuplicateProperties = false;
        options.RespectRequiredConstructorParameters = true;

        // The web defaults read "3" as 3; a number in quotes is a type error like any other.
        options.NumberHandling = JsonNumberHandling.Strict;
    }

    /// <summary>A sentence for a body that could not be read as <paramref name="requestType"/>.</summary>
    public static string Describe(JsonException exception, Type? requestType)
    {
        var path = exception.Path is null or "" ? "$" : exception.Path;
        var message = exception.Message;
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
        {
            var parent = Parent(path);
            var known = requestType is null ? null : Fields(Resolve(requestType, parent));
            return $"{path} is not a field of this request" + (known is { Count: > 0 } ? $" (fields at {parent}: {string.Join(", ", known)})." : ".");
        }

        if (message.Contains("Duplicate", StringComparison.OrdinalIgnoreCase))
        {
            return $"{path} is given more than once; give each field once.";
        }

        if (MissingRequired().Match(message) is { Success: true } missing)
        {
            var names = missing.Groups["names"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(n => $"{(path == "$" ? "$" : path)}.{n.Trim('\'')}");
            return $"The body is missing required fields: {string.Join(", ", names)}.";
        }

        if (message.Contains("could not be converted to", StringComparison.Ordinal) && requestType is not null)
        {
            var expected = Expected(Resolve(requestType, path));
            return path == "$" ? $"The body must be {expected}." : $"{path} must be {expected}.";
        }

        if (exception.InnerException is null && !message.Contains("Path:", StringComparison.Ordinal) && !message.Contains("LineNumber", StringComparison.Ordinal))
        {
            // Our own converters write whole sentences.
            return $"{path}: {message}";
        }

        // The reader's own complaints (truncated or malformed JSON) say what is wrong without naming .NET types.
        var sentence = message.Split(" Path:", 2)[0].Split(" LineNumber:", 2)[0].TrimEnd('.');
        return $"The body is not valid JSON at {path} (line {exception.LineNumber + 1}, byte {exception.BytePositionInLine}): {sentence}.";
    }

    /// <summary>What a JSON value for <paramref name="type"/> looks like, in words.</summary>
    public static string Expected(Type? type)
    {
        type = type is null ? null : Nullable.GetUnderlyingType(type) ?? type;
        return type switch
        {
            null => "a value of another type",
            _ when type == typeof(int) => "a whole number from -2147483648 to 2147483647",
            _ when type == typeof(short) => "a whole number from -32768 to 32767",
            _ when type == typeof(long) => "a whole number from -9223372036854775808 to 9223372036854775807",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(string) => "a string",
            _ when type == typeof(Guid) => "a UUID string such as \"0b5e5f9c-3d55-4c39-9a4b-1f3b0a1f6a10\"",
            _ when type.IsEnum => $"one of {string.Join(", ", Enum.GetNames(type))}",
            _ when DictionaryValue(type) is not null => "a JSON object",
            _ when ElementType(type) is not null => "a JSON array",
            _ => "a JSON object",
        };
    }

    /// <summary>The .NET type a JSON path such as <c>$.listeners[1].port</c> addresses within <paramref name="root"/>.</summary>
    public static Type? Resolve(Type root, string path)
    {
        Type? type = root;
        foreach (Match segment in Segment().Matches(path))
        {
            if (type is null)
            {
                return null;
            }

            type = Nullable.GetUnderlyingType(type) ?? type;
            if (DictionaryValue(type) is { } value)
            {
                type = value;
            }
            else if (segment.Groups["index"].Success)
            {
                type = ElementType(type);
            }
            else
            {
                var name = segment.Groups["name"].Success ? segment.Groups["name"].Value : segment.Groups["quoted"].Value;
                type = type.GetProperty(name, System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.IgnoreCase)?.PropertyType;
            }
        }

        return type;
    }

    private static List<string>? Fields(Type? type)
        => type is null || type == typeof(string) || DictionaryValue(type) is not null || ElementType(type) is not null
            ? null
            : [.. type.GetProperties().Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name))];

    private static string Parent(string path)
    {
        var last = path.LastIndexOfAny(['.', '[']);
        return last <= 0 ? "$" : path[..last];
    }

    internal static Type? DictionaryValue(Type type)
        => Interface(type, typeof(IReadOnlyDictionary<,>)) is { } dictionary ? dictionary.GetGenericArguments()[1] : null;

    internal static Type? ElementType(Type type)
        => type == typeof(string) ? null
            : type.IsArray ? type.GetElementType()
            : Interface(type, typeof(IEnumerable<>))?.GetGenericArguments()[0] is { } element && typeof(IEnumerable).IsAssignableFrom(type) ? element
            : null;

    private static Type? Interface(Type type, Type generic)
        => type.IsGenericType && type.GetGenericTypeDefinition() == generic
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == generic);

    [GeneratedRegex(@"\.(?<name>[^.\[\]]+)|\['(?<quoted>(?:[^']|'')*)'\]|\[(?<index>\d+)\]")]
    private static partial Regex Segment();

    [GeneratedRegex(@"missing required properties including: (?<names>.+?)\.?( Path:|$)")]
    private static partial Regex MissingRequired();
}
