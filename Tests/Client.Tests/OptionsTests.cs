using Microsoft.AspNetCore.Builder;

namespace OrleansMeta.Client.Tests;

public sealed class OptionsTests
{
    [Fact]
    public void Invalid_options_are_rejected_with_every_problem_listed()
    {
        var options = new MetaClientOptions
        {
            BootstrapUrls = [new Uri("ftp://silo/"), new Uri("/relative", UriKind.Relative)],
            RequestTimeout = TimeSpan.Zero,
            MaxAttempts = 0,
            RetryBaseDelay = TimeSpan.FromSeconds(5),
            RetryMaxDelay = TimeSpan.FromSeconds(1),
            HttpMessageHandler = new SocketsHttpHandler(),
            HttpClient = new HttpClient(),
        };

        var error = Assert.Throws<ArgumentException>(() => new MetaClient(options));

        Assert.Equal("options", error.ParamName);
        Assert.Contains("BootstrapUrls[0]", error.Message, StringComparison.Ordinal);
        Assert.Contains("BootstrapUrls[1]", error.Message, StringComparison.Ordinal);
        Assert.Contains("RequestTimeout", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxAttempts", error.Message, StringComparison.Ordinal);
        Assert.Contains("RetryMaxDelay", error.Message, StringComparison.Ordinal);
        Assert.Contains("Both HttpMessageHandler and HttpClient", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_without_bootstrap_urls_are_rejected()
    {
        var error = Assert.Throws<ArgumentException>(() => new MetaClient(new MetaClientOptions()));

        Assert.Contains("BootstrapUrls is empty", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Defaults_are_the_documented_ones()
    {
        var options = new MetaClientOptions();

        Assert.Equal(TimeSpan.FromSeconds(30), options.RequestTimeout);
        Assert.Equal(5, options.MaxAttempts);
        Assert.Equal(TimeSpan.FromMilliseconds(100), options.RetryBaseDelay);
        Assert.Equal(TimeSpan.FromSeconds(2), options.RetryMaxDelay);
        Assert.True(options.RouteCallsToOwner);
        Assert.True(options.MonotonicReads);
    }

    [Fact]
    public async Task An_injected_http_client_is_used_and_left_undisposed()
    {
        await using var silo = await FakeSilo.StartAsync(app =>
            app.MapGet("/v1/cluster", () => "{\"clusterId\":\"c\",\"viewVersion\":1,\"viewReadAt\":\"2020-01-01T00:00:00Z\",\"silos\":[]}"));
        using var http = new HttpClient();
        var client = new MetaClient(new MetaClientOptions { BootstrapUrls = [silo.Url], HttpClient = http });

        Assert.Equal("c", (await client.GetClusterAsync()).ClusterId);
        client.Dispose();

        using var response = await http.GetAsync(new Uri(silo.Url, "v1/cluster"));
        Assert.True(response.IsSuccessStatusCode);
        Assert.Equal(2, silo.Hits);
    }
}
