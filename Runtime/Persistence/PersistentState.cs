using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Runtime.Activation;

namespace OrleansMeta.Runtime.Persistence;

/// <summary>Loads a state before the grain's <c>OnActivateAsync</c>.</summary>
internal interface IActivationStateLoader
{
    Task LoadAsync(CancellationToken cancellationToken);
}

/// <summary>How grain state is turned into bytes: System.Text.Json with web defaults unless configured.</summary>
public sealed class GrainStateSerializer(JsonSerializerOptions? options = null)
{
    public JsonSerializerOptions Options { get; } = options ?? new JsonSerializerOptions(JsonSerializerDefaults.Web);

    /// <summary>
    /// Serializes the types <paramref name="resolver"/> knows (a source-generated <c>JsonSerializerContext</c>) with its
    /// compiled code, and every other type by reflection as before. Generated with the same options, it reads and writes
    /// the same bytes, without reflection's per-call work and garbage. Only while the host is built: options are frozen
    /// once the first state is read or written.
    /// </summary>
    public void AddCompiled(IJsonTypeInfoResolver resolver)
    {
        ArgumentNullException.ThrowIfNull(resolver);
        if (Options.TypeInfoResolverChain.Count == 0)
        {
            Options.TypeInfoResolverChain.Add(new DefaultJsonTypeInfoResolver());
        }

        Options.TypeInfoResolverChain.Insert(0, resolver);
    }
}

/// <summary>
/// The runtime's <see cref="IPersistentState{TState}"/>: state in memory, every write a compare-and-set in storage.
/// A failed write deactivates the activation unless it is known to have changed nothing (see <c>OnWriteFailed</c>).
/// </summary>
internal sealed class PersistentState<TState> : IPersistentState<TState>, IActivationStateLoader where TState : new()
{
    private readonly GrainActivation _activation;
    private readonly string _stateName;
    private readonly IGrainStorage _storage;
    private readonly JsonSerializerOptions _json;

    public PersistentState(GrainActivation activation, string stateName, IGrainStorage storage, JsonSerializerOptions json)
    {
        _activation = activation;
        _stateName = stateName;
        _storage = storage;
        _json = json;
    }

    public TState State { get; set; } = new();

    public long Version { get; private set; }

    public string? Etag => Version == 0 ? null : Version.ToString(CultureInfo.InvariantCulture);

    public bool RecordExists { get; private set; }

    public Task LoadAsync(CancellationToken cancellationToken) => ReadStateAsync(cancellationToken);

    public async Task ReadStateAsync(CancellationToken cancellationToken = default)
    {
        var stored = await _storage.ReadAsync(_activation.GrainId, _stateName, cancellationToken);
        Version = stored?.Version ?? 0;
        RecordExists = stored?.Payload is not null;
        State = stored?.Payload is { } payload ? JsonSerializer.Deserialize<TState>(payload, _json) ?? new TState() : new TState();
    }

    public Task WriteStateAsync(CancellationToken cancellationToken = default) => WriteStateAsync([], null, cancellationToken);

    public async Task<long?> WriteStateAsync(IReadOnlyList<LogRecord> records, IReadOnlyList<WriteFence>? fences = null, CancellationToken cancellationToken = default)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(State, _json);
        try
        {
            var result = await _storage.WriteAsync(_activation.GrainId, _stateName, new StateWrite(payload, Version, records, fences ?? []), cancellationToken);
            Version = result.Version;
            RecordExists = true;
            return result.LastLogOffset;
        }
        catch (Exception exception)
        {
            OnWriteFailed(exception);
            if (Unknown(exception) is { } unknown)
            {
                throw unknown;
            }

            throw;
        }
    }

    public Task ClearStateAsync(CancellationToken cancellationToken = default) => ClearStateAsync([], cancellationToken);

    public async Task ClearStateAsync(IReadOnlyList<LogRecord> records, CancellationToken cancellationToken = default)
    {
        try
        {
            Version = (await _storage.WriteAsync(_activation.GrainId, _stateName, new StateWrite(null, Version, records, []), cancellationToken)).Version;
            RecordExists = false;
            State = new TState();
        }
        catch (Exception exception)
        {
            OnWriteFailed(exception);
            if (Unknown(exception) is { } unknown)
            {
                throw unknown;
            }

            throw;
        }
    }

    /// <summary>A failure that is not one of storage's clean refusals, named for what it means to the caller.</summary>
    private WriteOutcomeUnknownException? Unknown(Exception exception) => exception is GrainRuntimeException or OperationCanceledException or ArgumentException
        ? null
        : new WriteOutcomeUnknownException(
            $"Writing the state of {_activation.GrainId} failed and may or may not have been committed ({exception.Message}); " +
            "the grain reloads its state before its next call. Retry: a change that did commit is then seen as done or refused as stale.",
            exception);

    /// <summary>
    /// Memory must equal what is committed. Only a fenced write is known to have changed nothing while this copy is
    /// still current; after anything else the activation goes away once the current turn ends (no other turn starts
    /// meanwhile), so the next call loads the state afresh: a lost compare-and-set means the copy is stale, a silo
    /// fence means the grain belongs elsewhere now, and any other failure (timeout, lost connection, cancellation
    /// after the batch was sent) leaves the outcome unknown: the commit may have happened.
    /// </summary>
    private void OnWriteFailed(Exception exception)
    {
        var reason = exception switch
        {
            FencedWriteException => (DeactivationReason?)null,
            InconsistentStateException => DeactivationReason.StateConflict,
            SiloFencedException => DeactivationReason.SiloFenced,
            _ => DeactivationReason.WriteOutcomeUnknown,
        };
        if (reason is { } deactivation)
        {
            _activation.RequestDeactivation(deactivation);
        }
    }
}

/// <summary>
/// Creates grain instances: the persistent states their constructor asks for with <see cref="PersistentStateAttribute"/>,
/// then the grain itself through a constructor factory compiled once per grain class (activations are frequent; a
/// failover activates thousands of grains at once).
/// </summary>
internal static class GrainActivator
{
    private static readonly ConcurrentDictionary<Type, Plan> s_plans = new();

    public static Grain Create(GrainActivation activation, Type grainClass)
    {
        var plan = s_plans.GetOrAdd(grainClass, BuildPlan);
        var services = activation.Runtime.Services;
        var arguments = new object[plan.States.Length];
        for (var i = 0; i < arguments.Length; i++)
        {
            var slot = plan.States[i];
            var storage = slot.StorageName is null
                ? services.GetRequiredService<IGrainStorage>()
                : services.GetRequiredKeyedService<IGrainStorage>(slot.StorageName);
            var state = slot.Create(activation, slot.StateName, storage, services.GetRequiredService<GrainStateSerializer>().Options);
            activation.AddState((IActivationStateLoader)state);
            arguments[i] = state;
        }

        return (Grain)plan.Factory(services, arguments);
    }

    private static Plan BuildPlan(Type grainClass)
    {
        var constructor = grainClass.GetConstructors().OrderByDescending(c => c.GetParameters().Length).FirstOrDefault();
        var slots = new List<StateSlot>();
        foreach (var parameter in constructor?.GetParameters() ?? [])
        {
            if (parameter.GetCustomAttribute<PersistentStateAttribute>() is not { } attribute)
            {
                continue;
            }

            var type = parameter.ParameterType;
            if (!type.IsGenericType || type.GetGenericTypeDefinition() != typeof(IPersistentState<>))
            {
                throw new InvalidOperationException(
                    $"{grainClass.Name}: parameter '{parameter.Name}' has [PersistentState] but is not IPersistentState<T>.");
            }

            var create = typeof(GrainActivator).GetMethod(nameof(CreateState), BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(type.GetGenericArguments()[0])
                .CreateDelegate<Func<GrainActivation, string, IGrainStorage, JsonSerializerOptions, object>>();
            slots.Add(new StateSlot(attribute.StateName, attribute.StorageName, type, create));
        }

        var factory = ActivatorUtilities.CreateFactory(grainClass, [.. slots.Select(s => s.Type)]);
        return new Plan(factory, [.. slots]);
    }

    private static object CreateState<TState>(GrainActivation activation, string stateName, IGrainStorage storage, JsonSerializerOptions json)
        where TState : new()
        => new PersistentState<TState>(activation, stateName, storage, json);

    private sealed record StateSlot(string StateName, string? StorageName, Type Type, Func<GrainActivation, string, IGrainStorage, JsonSerializerOptions, object> Create);

    private sealed record Plan(ObjectFactory Factory, StateSlot[] States);
}
