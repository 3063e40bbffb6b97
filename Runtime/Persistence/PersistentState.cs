using System.Globalization;
using System.Reflection;
using System.Text.Json;
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
}

/// <summary>
/// The runtime's <see cref="IPersistentState{TState}"/>: state in memory, every write a compare-and-set in storage.
/// Losing a compare-and-set deactivates the activation, since its copy of the state is stale.
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
        catch (InconsistentStateException)
        {
            _activation.RequestDeactivation(DeactivationReason.StateConflict);
            throw;
        }
    }

    public async Task ClearStateAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            Version = await _storage.ClearAsync(_activation.GrainId, _stateName, Version, cancellationToken);
            RecordExists = false;
            State = new TState();
        }
        catch (InconsistentStateException)
        {
            _activation.RequestDeactivation(DeactivationReason.StateConflict);
            throw;
        }
    }
}

/// <summary>Creates the persistent states a grain constructor asks for with <see cref="PersistentStateAttribute"/>.</summary>
internal static class PersistentStateBinder
{
    public static object[] CreateStates(GrainActivation activation, Type grainClass)
    {
        var constructor = grainClass.GetConstructors().OrderByDescending(c => c.GetParameters().Length).FirstOrDefault();
        if (constructor is null)
        {
            return [];
        }

        var states = new List<object>();
        foreach (var parameter in constructor.GetParameters())
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

            var storage = attribute.StorageName is null
                ? activation.Runtime.Services.GetRequiredService<IGrainStorage>()
                : activation.Runtime.Services.GetRequiredKeyedService<IGrainStorage>(attribute.StorageName);
            var serializer = activation.Runtime.Services.GetRequiredService<GrainStateSerializer>();
            var stateType = typeof(PersistentState<>).MakeGenericType(type.GetGenericArguments()[0]);
            var state = Activator.CreateInstance(stateType, activation, attribute.StateName, storage, serializer.Options)!;
            activation.AddState((IActivationStateLoader)state);
            states.Add(state);
        }

        return [.. states];
    }
}
