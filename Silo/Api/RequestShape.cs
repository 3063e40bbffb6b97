using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// One pass over every request body before the endpoint runs: a null where the wire model's nullable annotations say
/// a value is required (a field, an array element such as <c>assignment: [null]</c>, a config value) is refused with
/// every such place named by its JSON path. The JSON reader cannot do this itself: it does not enforce annotations on
/// collection elements, and nulls that slip through crash deep inside a grain.
/// </summary>
internal static class RequestShape
{
    private static readonly ConcurrentDictionary<Type, Field[]> s_fields = new();

    /// <summary>Checks the arguments of endpoints whose parameters include a wire model.</summary>
    public static EndpointFilterDelegate Filter(EndpointFilterFactoryContext context, EndpointFilterDelegate next)
    {
        var bodies = context.MethodInfo.GetParameters()
            .Select((parameter, index) => (parameter, index))
            .Where(p => IsModel(p.parameter.ParameterType))
            .Select(p => p.index)
            .ToArray();
        if (bodies.Length == 0)
        {
            return next;
        }

        return invocation =>
        {
            var problems = new List<string>();
            foreach (var index in bodies)
            {
                if (invocation.Arguments[index] is { } body)
                {
                    Walk(body, nullable: true, generic: null, "$", problems);
                }
            }

            if (problems.Count > 0)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"The body has nulls where values are required: {string.Join("; ", problems)}.");
            }

            return next(invocation);
        };
    }

    private static bool IsModel(Type type) => type.Namespace == typeof(CreateTopicRequest).Namespace && type.IsClass && type != typeof(string);

    private static void Walk(object? value, bool nullable, NullabilityInfo? generic, string path, List<string> problems)
    {
        if (value is null)
        {
            if (!nullable)
            {
                problems.Add($"{path} must not be null");
            }

            return;
        }

        switch (value)
        {
            case string:
                return;
            case IDictionary dictionary:
                var valueInfo = generic?.GenericTypeArguments is { Length: 2 } kv ? kv[1] : null;
                foreach (DictionaryEntry entry in dictionary)
                {
                    Walk(entry.Value, valueInfo is null || valueInfo.ReadState != NullabilityState.NotNull, valueInfo, $"{path}['{entry.Key}']", problems);
                }

                return;
            case IEnumerable items:
                var element = generic?.ElementType ?? (generic?.GenericTypeArguments is { Length: 1 } one ? one[0] : null);
                if (element?.Type is { IsValueType: true } && Nullable.GetUnderlyingType(element.Type) is null)
                {
                    // A list of numbers cannot hold a null (the reader refused it already); a large one costs nothing here.
                    return;
                }

                var index = 0;
                foreach (var item in items)
                {
                    Walk(item, element is null || element.ReadState != NullabilityState.NotNull, element, $"{path}[{index++}]", problems);
                }

                return;
        }

        if (!IsModel(value.GetType()))
        {
            return;
        }

        foreach (var field in s_fields.GetOrAdd(value.GetType(), Fields))
        {
            Walk(field.Property.GetValue(value), field.Info.ReadState != NullabilityState.NotNull, field.Info, $"{path}.{field.Name}", problems);
        }
    }

    private static Field[] Fields(Type type)
    {
        // NullabilityInfoContext is not thread-safe; each type's fields are read once and cached.
        var context = new NullabilityInfoContext();
        return [.. type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0)
            .Select(p => new Field(p, JsonNamingPolicy.CamelCase.ConvertName(p.Name), context.Create(p)))];
    }

    private sealed record Field(PropertyInfo Property, string Name, NullabilityInfo Info);
}
