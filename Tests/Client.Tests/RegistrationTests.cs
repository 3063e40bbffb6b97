using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary><c>services.AddMetaClient(...)</c>: one validated client for the whole application.</summary>
public sealed class RegistrationTests
{
    [Fact]
    public async Task AddMetaClient_registers_one_shared_client_that_the_container_disposes()
    {
        await using var silo = await FakeSilo.StartAsync(app => app.MapGet("/v1/cluster", () =>
            Results.Ok(new ClusterInfo("meta-di", 1, DateTimeOffset.UnixEpoch, null, []))));
        var services = new ServiceCollection();
        services.AddMetaClient(o => o.BootstrapUrls.Add(silo.Url));
        IMetaClient client;

        await using (var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true }))
        {
            client = provider.GetRequiredService<IMetaClient>();
            Assert.Same(client, provider.GetRequiredService<IMetaClient>());
            Assert.Same(client, provider.GetRequiredService<MetaClient>());
            Assert.Equal("meta-di", (await client.GetClusterAsync()).ClusterId);
        }

        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.GetClusterAsync());
    }

    [Fact]
    public void AddMetaClient_binds_a_configuration_section()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Meta:Client:BootstrapUrls:0"] = "http://meta-0:5080/",
            ["Meta:Client:BootstrapUrls:1"] = "http://meta-1:5080/",
            ["Meta:Client:RequestTimeout"] = "00:00:07",
            ["Meta:Client:MaxAttempts"] = "3",
        }).Build();
        var services = new ServiceCollection();

        services.AddMetaClient(configuration.GetSection("Meta:Client"));
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<MetaClientOptions>>().Value;
        Assert.Equal([new Uri("http://meta-0:5080/"), new Uri("http://meta-1:5080/")], options.BootstrapUrls);
        Assert.Equal((TimeSpan.FromSeconds(7), 3), (options.RequestTimeout, options.MaxAttempts));
        Assert.NotNull(provider.GetRequiredService<IMetaClient>());
    }

    [Fact]
    public void Invalid_options_fail_when_the_client_is_resolved_listing_every_problem()
    {
        var services = new ServiceCollection();
        services.AddMetaClient(o => (o.MaxAttempts, o.RequestTimeout) = (0, TimeSpan.Zero));
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IMetaClient>());

        Assert.Contains(error.Failures, f => f.Contains("BootstrapUrls is empty", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("MaxAttempts", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("RequestTimeout", StringComparison.Ordinal));
    }

    [Fact]
    public void Registering_twice_keeps_one_client_and_one_validator()
    {
        var services = new ServiceCollection();
        services.AddMetaClient(o => o.BootstrapUrls.Add(new Uri("http://meta-0:5080/")));
        services.AddMetaClient(o => o.MaxAttempts = 2);

        Assert.Single(services, d => d.ServiceType == typeof(IMetaClient));
        Assert.Single(services, d => d.ServiceType == typeof(IValidateOptions<MetaClientOptions>));
        using var provider = services.BuildServiceProvider();
        Assert.Equal(2, provider.GetRequiredService<IOptions<MetaClientOptions>>().Value.MaxAttempts);
    }
}
