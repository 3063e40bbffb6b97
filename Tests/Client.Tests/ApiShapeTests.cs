using System.Reflection;
using System.Runtime.CompilerServices;

namespace OrleansMeta.Client.Tests;

/// <summary>The SDK's public surface keeps the library conventions callers rely on.</summary>
public sealed class ApiShapeTests
{
    private static readonly Type[] PublicTypes = typeof(MetaClient).Assembly.GetExportedTypes();

    private static IEnumerable<MethodInfo> AsyncMethods => PublicTypes
        .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
        .Where(m => m.ReturnType == typeof(Task) || m.ReturnType == typeof(ValueTask)
            || (m.ReturnType.IsGenericType && m.ReturnType.GetGenericTypeDefinition() is var g && (g == typeof(Task<>) || g == typeof(ValueTask<>))))
        .Where(m => !m.IsSpecialName && m.Name != nameof(IAsyncDisposable.DisposeAsync)); // Its shape is IAsyncDisposable's.

    [Fact]
    public void Every_public_async_method_takes_an_optional_cancellation_token_last()
    {
        var wrong = AsyncMethods
            .Where(m => m.GetParameters() is not [.., { ParameterType: var last } p] || last != typeof(CancellationToken) || !p.HasDefaultValue)
            .Select(Describe)
            .ToList();

        Assert.Empty(wrong);
        Assert.Contains(AsyncMethods, m => m.Name == nameof(BrokerSession.ShutDownAsync)); // The scan sees the session too.
    }

    [Fact]
    public void Where_optional_parameters_precede_the_token_an_overload_takes_it_right_after_the_required_ones()
    {
        var methods = AsyncMethods.ToList();
        var missing = new List<string>();
        foreach (var method in methods)
        {
            var parameters = method.GetParameters();
            var required = parameters.TakeWhile(p => !p.IsOptional).Select(p => p.ParameterType).ToList();
            if (parameters.Length - 1 == required.Count)
            {
                continue; // Only the token is optional.
            }

            var wanted = required.Append(typeof(CancellationToken)).ToList();
            var found = methods.Any(m => m.Name == method.Name && m != method && (
                (m.DeclaringType == method.DeclaringType && m.IsStatic == method.IsStatic
                    && m.GetParameters().Select(p => p.ParameterType).SequenceEqual(wanted))
                || (m.IsDefined(typeof(ExtensionAttribute)) && !method.IsStatic
                    && m.GetParameters()[0].ParameterType.IsAssignableFrom(method.DeclaringType)
                    && m.GetParameters().Skip(1).Select(p => p.ParameterType).SequenceEqual(wanted))));
            if (!found)
            {
                missing.Add(Describe(method));
            }
        }

        Assert.Empty(missing);
    }

    [Fact]
    public void Meta_client_implements_every_public_operation_of_the_interface_and_nothing_public_is_left_out()
    {
        var interfaceMethods = typeof(IMetaClient).GetMethods().Select(m => m.Name).ToHashSet();
        var clientOperations = typeof(MetaClient).GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Where(m => !m.IsSpecialName && m.Name != nameof(MetaClient.Dispose))
            .Select(m => m.Name);

        Assert.All(clientOperations, name => Assert.Contains(name, interfaceMethods));
        Assert.True(typeof(IMetaClient).IsAssignableFrom(typeof(MetaClient)));
    }

    private static string Describe(MethodInfo m) =>
        $"{m.DeclaringType!.Name}.{m.Name}({string.Join(", ", m.GetParameters().Select(p => p.ParameterType.Name + (p.IsOptional ? "?" : "")))})";
}
